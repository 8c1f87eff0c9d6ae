/** `covid-ct backbone list` and `covid-ct backbone check [--backbone NAME]`. */
import { basename } from 'node:path';
import { Command } from 'commander';
import { runBackboneCheck } from '../engine/check.ts';
import { listBackbones } from '../engine/registry.ts';

export function backboneCommand(): Command {
  const command = new Command('backbone').description('ImageNet backbones: list them, check one on the sample photos');
  command
    .command('list')
    .description('list the built-in backbones with their input, features and unfreeze points')
    .action(() => {
      for (const spec of listBackbones()) {
        console.log(`${spec.name}: ${spec.description}`);
        console.log(`  source: ${spec.source}`);
        console.log(`  input: ${spec.inputSize}x${spec.inputSize} RGB; ${spec.preprocessing}`);
        console.log(`  feature layer: ${spec.featureLayer}; classifier: ${spec.classifierLayer ?? 'none'}`);
        console.log(`  unfreeze points: ${spec.unfreezePoints.join(', ')}`);
      }
      console.log('Any tfjs layers model can be named as path/model.json with a feature layer.');
    });
  command
    .command('check')
    .description('classify the sample photos with the full ImageNet classifier and print the top-5 per image')
    .option('--backbone <name>', 'backbone with an ImageNet classifier', 'mobilenet-v2')
    .action(async (options: { backbone: string }) => {
      const result = await runBackboneCheck(options.backbone);
      for (const image of result.images) {
        console.log(`${basename(image.file)}: ${image.ok ? 'ok' : `WRONG, expected ${image.expected}`}`);
        for (const [rank, p] of image.top5.entries()) console.log(`  ${rank + 1}. ${p.score.toFixed(4)}  ${p.label} (${p.index})`);
      }
      console.log(result.ok ? `${result.backbone}: all top-1 classes as expected` : `${result.backbone}: some top-1 classes are wrong`);
      if (!result.ok) process.exitCode = 1;
    });
  return command;
}
