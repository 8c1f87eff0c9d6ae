/** `covid-ct backbone list`, `covid-ct backbone summary NAME` and `covid-ct backbone check [--backbone NAME]`. */
import { basename } from 'node:path';
import { Command } from 'commander';
import { runBackboneCheck } from '../engine/check.ts';
import { initWasmBackend } from '../engine/kernels/index.ts';
import { BUILTIN_BACKBONES, listBackbones } from '../engine/registry.ts';
import { backboneSummary, formatSummary } from '../engine/summary.ts';

export function backboneCommand(): Command {
  const command = new Command('backbone').description('ImageNet backbones: list them, print their layers, check one on the sample photos');
  command
    .command('list')
    .description('list the built-in backbones with their input, features and unfreeze points')
    .action(() => {
      for (const spec of listBackbones()) {
        console.log(`${spec.name}: ${spec.description}`);
        console.log(`  source: ${spec.source}`);
        console.log(`  input: ${spec.inputSize}x${spec.inputSize} RGB; ${spec.preprocessing}`);
        console.log(`  feature layer: ${spec.featureLayer}; classifier: ${spec.classifierLayer ?? 'none'}`);
        console.log(`  unfreeze points: ${spec.unfreezePoints.join(', ')}${spec.build ? ' (or a Keras layer index, e.g. 221)' : ''}`);
      }
      console.log('Any tfjs layers model can be named as path/model.json with a feature layer.');
    });
  command
    .command('summary')
    .description('the layer table (index, name, type, output shape, parameters) and the total and trainable parameter counts')
    .argument('<name>', `backbone: ${Object.keys(BUILTIN_BACKBONES).join(', ')}, or a tfjs layers model path/model.json`)
    .option('--include-top', 'Keras-format backbones: with the ImageNet classifier (as include_top=True)')
    .option('--feature-layer <layer>', 'feature layer of a tfjs layers model directory')
    .option('--json', 'print the summary as JSON')
    .action(async (name: string, options: { includeTop?: boolean; featureLayer?: string; json?: boolean }) => {
      await initWasmBackend();
      const summary = await backboneSummary(name, {
        ...(options.includeTop ? { includeTop: true } : {}),
        ...(options.featureLayer ? { featureLayer: options.featureLayer } : {}),
      });
      console.log(options.json ? JSON.stringify(summary, null, 1) : formatSummary(summary));
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
