import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { Config, DeepPartial, PredictFormat } from '../config/index.ts';
import { PREDICT_FORMATS, resolveConfig } from '../config/index.ts';
import type { WindowSetting } from '../data/medical/index.ts';
import { expandInputs } from '../inference/inputs.ts';
import { DISCLAIMER, loadModel } from '../inference/model.ts';
import { predictStudies, toCsv, toJson } from '../inference/predict.ts';
import { engineOption, integer, modelOverrides, ttaOption } from './options.ts';
import type { ForwardEngineName, TtaMode } from '../config/index.ts';

/** Exit code when some inputs (or slices) could not be read; the others were predicted. */
export const EXIT_SOME_FAILED = 3;

/** `--window file` or `--window LEVEL,WIDTH` (Hounsfield units). */
export function parseWindow(value: string): WindowSetting {
  if (value === 'file') return 'file';
  const match = /^(-?\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$/.exec(value.trim());
  if (!match || Number(match[2]) < 1) throw new InvalidArgumentError(`--window must be 'file' or LEVEL,WIDTH with WIDTH >= 1 (e.g. -600,1500), got '${value}'`);
  return { level: Number(match[1]), width: Number(match[2]) };
}

function format(value: string): PredictFormat {
  if (!(PREDICT_FORMATS as readonly string[]).includes(value)) throw new InvalidArgumentError(`--format must be one of ${PREDICT_FORMATS.join(', ')}, got '${value}'`);
  return value as PredictFormat;
}

interface PredictFlags {
  engine?: ForwardEngineName;
  tta?: TtaMode;
  model: string;
  format?: PredictFormat;
  output?: string;
  explain?: boolean;
  heatmapDir: string;
  window?: WindowSetting;
  topK?: number;
  batchSize?: number;
  config?: string;
}

export function predictCommand(): Command {
  return new Command('predict')
    .description(
      'P(COVID) for images, DICOM slices, DICOM series folders and NIfTI volumes (recognised by content). ' +
        `Series and volumes also get a study score: the mean of the top-k slice probabilities. ${DISCLAIMER}`,
    )
    .argument('<inputs...>', 'image, DICOM or NIfTI files, and folders (searched recursively)')
    .requiredOption('--model <dir>', 'model directory written by train')
    .option('--format <format>', 'csv | json (default csv, or predict.format)', format)
    .option('--output <file>', 'write the results here instead of to stdout')
    .option('--explain', 'write a Grad-CAM heatmap overlay PNG per image or slice')
    .option('--heatmap-dir <dir>', 'folder for the --explain overlays', 'gradcam')
    .option('--window <window>', "DICOM/NIfTI window: 'file' (the file's own) or LEVEL,WIDTH in HU (default -600,1500)", parseWindow)
    .option('--top-k <k>', 'slices averaged for the study score (default 5)', integer('--top-k'))
    .option('--batch-size <n>', 'slices per model batch', integer('--batch-size'))
    .option('--config <file>', 'JSON config file (see src/config/index.ts)')
    .addOption(engineOption())
    .addOption(ttaOption())
    .addHelpText(
      'after',
      `\nExit codes: 0 every input predicted; ${EXIT_SOME_FAILED} some inputs or slices failed (listed with reasons, the rest predicted);\n1 an error (e.g. no model); 2 a usage error.`,
    )
    .action(async (inputs: string[], flags: PredictFlags) => {
      const overrides: DeepPartial<Config> = {
        predict: {
          ...(flags.format && { format: flags.format }),
          ...(flags.topK !== undefined && { topK: flags.topK }),
          ...(flags.batchSize !== undefined && { batchSize: flags.batchSize }),
        },
        ...(flags.window && typeof flags.window === 'object' && { medical: { window: flags.window, windowSource: 'fixed' as const } }),
        ...(flags.window === 'file' && { medical: { windowSource: 'file' as const } }),
      };
      const config = resolveConfig({ ...overrides, ...modelOverrides(flags) }, flags.config);
      const model = await loadModel(resolve(flags.model), { engine: config.engine, ...(flags.tta && { tta: flags.tta }) });
      try {
        const window: WindowSetting = config.medical.windowSource === 'file' ? 'file' : config.medical.window;
        const { studies, failures } = await expandInputs(inputs, { imageSize: model.card.imageSize, window, config });
        const report = await predictStudies(model, studies, {
          topK: config.predict.topK,
          batchSize: config.predict.batchSize,
          heatmapOpacity: config.predict.heatmapOpacity,
          ...(flags.explain && { explain: { kind: 'files' as const, dir: resolve(flags.heatmapDir) } }),
        }, failures);
        const text = config.predict.format === 'json' ? toJson(report) : toCsv(report);
        if (flags.output) writeFileSync(flags.output, text);
        else process.stdout.write(text);
        const warned = new Set<string>();
        for (const p of [...report.predictions, ...report.studies]) {
          for (const warning of p.warnings) {
            const line = `warning: ${'file' in p ? p.file : p.source}: ${warning}`;
            if (!warned.has(line)) console.error(line);
            warned.add(line);
          }
        }
        for (const failure of report.failures) console.error(`failed: ${failure.file}${failure.slice !== undefined ? ` slice ${failure.slice}` : ''}: ${failure.reason}`);
        console.error(`${report.predictions.length} predicted, ${report.failures.length} failed. ${DISCLAIMER}`);
        if (report.failures.length > 0) process.exitCode = EXIT_SOME_FAILED;
      } finally {
        await model.dispose();
      }
    });
}
