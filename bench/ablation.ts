// Issue 9's ablation: preprocessing variants trained with the same schedule and seeds, then the inference-time
// variants built from the default variant's models: TTA, an ensemble of its seeds, and ensembles of backbones
// (mobilenet-v2 + mobilenet-v1 per seed; efficientnet-b0 has no weights in ../shared). Choices are read from the
// validation columns only (the test columns are reported, never used to choose). One JSON line per variant.
//   npm run bench -- ablation [--seeds N] [--quick] [--variants a,b] [--reuse DIR] [-- extra train flags]
// --quick: 1 round of 10 + 10 epochs over 4 views, for a first look within minutes per run.
// --reuse DIR: a former ablation folder; models already trained there are evaluated, not trained again.
// Pre-training is off except in the '+pretrain' row (grayscale+jpeg with --pretrain sars-cov-2-ct-224).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DeepPartial, Config } from '../src/config/index.ts';
import { PROJECT_ROOT } from '../src/config/index.ts';
import { main } from '../src/cli/main.ts';
import { benchArgs } from './lib/args.ts';

type Variant = { config: DeepPartial<Config> };
// Every trained row scores without test-time augmentation (the 'tta' row adds it) and pins the regularisation
// it was measured with, so a later change of defaults does not change what a row means.
const row = (preprocess: Partial<Config['preprocess']>, train: DeepPartial<Config['train']> = {}): Variant => ({
  config: { tta: 'none', preprocess: { grayscale: false, jpegReencode: false, lungCrop: false, ...preprocess }, train: { labelSmoothing: 0, refit: false, ...train } },
});
const TRAINED: Record<string, Variant> = {
  baseline: row({}),
  grayscale: row({ grayscale: true }),
  'grayscale+jpeg': row({ grayscale: true, jpegReencode: true }),
  'grayscale+jpeg+lungs': row({ grayscale: true, jpegReencode: true, lungCrop: true }),
  '+pretrain': row({ grayscale: true, jpegReencode: true }, { pretrain: 'sars-cov-2-ct-224' }),
  '+smoothing': row({ grayscale: true, jpegReencode: true }, { labelSmoothing: 0.1 }),
};
/** The variant equal to today's defaults (without TTA); TTA and the ensembles are built from its models. */
const DEFAULT_VARIANT = '+smoothing';
/** The ensemble's second backbone: the default variant on MobileNetV1 (fine-tuned from block_13, its last two blocks). */
const SECOND_BACKBONE = `mobilenet-v1@${DEFAULT_VARIANT}`;
TRAINED[SECOND_BACKBONE] = { config: { ...TRAINED[DEFAULT_VARIANT]!.config, train: { ...TRAINED[DEFAULT_VARIANT]!.config.train, backbone: 'mobilenet-v1', fineTuneAt: 'block_13' } } };
const DERIVED = ['tta', 'ensemble-seeds', 'ensemble-backbones'] as const;
const ALL = [...Object.keys(TRAINED).filter((v) => v !== SECOND_BACKBONE), ...DERIVED];

const { option, flag, trainFlags: extra } = benchArgs(process.argv.slice(2));
const seeds = Number(option('--seeds') ?? 3);
const quick = flag('--quick');
const chosen = option('--variants')?.split(',') ?? ALL;
for (const name of chosen) if (!ALL.includes(name)) throw new Error(`unknown variant '${name}'; variants: ${ALL.join(', ')}`);
const schedule = [...(quick ? ['--rounds', '1', '--epochs1', '10', '--epochs2', '10', '--views', '4'] : []), ...extra];
const runDir = resolve(option('--reuse') ?? join(PROJECT_ROOT, 'runs', `ablation-${Date.now()}`));
mkdirSync(runDir, { recursive: true });
console.log(`ablation in ${runDir}`);

type Scores = { valAuc: number; valAccuracy: number; testAuc: number; testAccuracy: number; format: number | null; wallS: number };
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

async function cli(argv: string[]): Promise<void> {
  const code = await main(['node', 'covid-ct', ...argv]);
  if (code !== 0) throw new Error(`covid-ct ${argv.join(' ')} exited ${code}`);
}

/** Trains (unless already there) and evaluates variant `name` with `seed`; returns the model folder and wall time. */
async function trained(name: string, seed: number): Promise<{ dir: string; wallS: number }> {
  const dir = join(runDir, `${name}-seed${seed}`);
  if (existsSync(join(dir, 'evaluation', 'metrics.json'))) return { dir, wallS: readJson(join(dir, 'wall.json')).wallS };
  const configFile = `${dir}.config.json`;
  writeFileSync(configFile, JSON.stringify(TRAINED[name]!.config));
  const started = performance.now();
  await cli(['train', '--config', configFile, '--seed', String(seed), '--out', dir, '--evaluate', ...schedule]);
  const wallS = (performance.now() - started) / 1000;
  writeFileSync(join(dir, 'wall.json'), JSON.stringify({ wallS }));
  return { dir, wallS };
}

/** Validation and test figures of a model or ensemble folder; `tta` evaluates both sets again with flips. */
async function scores(dir: string, wallS: number, options: { tta?: boolean; validationFrom?: string } = {}): Promise<Scores> {
  const card = readJson(join(dir, 'model.json'));
  let val = { auc: card.validation.auc as number, accuracy: card.validation.accuracy as number };
  let test = readJson(join(dir, 'evaluation', 'metrics.json'));
  if (options.tta) {
    const [valOut, testOut] = [join(dir, 'evaluation-val-tta'), join(dir, 'evaluation-tta')];
    if (!existsSync(join(valOut, 'metrics.json'))) await cli(['evaluate', '--model', dir, '--split', 'val', '--tta', 'flips', '--out', valOut]);
    if (!existsSync(join(testOut, 'metrics.json'))) await cli(['evaluate', '--model', dir, '--tta', 'flips', '--out', testOut]);
    val = readJson(join(valOut, 'metrics.json'));
    test = readJson(join(testOut, 'metrics.json'));
  }
  // The container probe on real files needs JPEG inside non-COVID validation images; the swap probe (the
  // test set's non-COVID PNGs against their own JPEG copies) is defined for every model.
  return { valAuc: val.auc, valAccuracy: val.accuracy, testAuc: test.auc, testAccuracy: test.accuracy, format: test.shortcutProbes.formatSwap?.auc ?? null, wallS };
}

async function ensemble(name: string, members: string[]): Promise<string> {
  const dir = join(runDir, name);
  if (!existsSync(join(dir, 'model.json'))) await cli(['ensemble', '--models', ...members, '--out', dir]);
  if (!existsSync(join(dir, 'evaluation', 'metrics.json'))) await cli(['evaluate', '--model', dir]);
  return dir;
}

/** Ensembles are named by the default variant they were built from, so a --reuse folder keeps each apart. */
const suffix = `@${DEFAULT_VARIANT}`;
const seedList = Array.from({ length: seeds }, (_, i) => i + 1);
async function rows(name: string): Promise<Scores[]> {
  if (name in TRAINED) {
    const out: Scores[] = [];
    for (const seed of seedList) {
      const { dir, wallS } = await trained(name, seed);
      out.push(await scores(dir, wallS));
    }
    return out;
  }
  const defaults = [];
  for (const seed of seedList) defaults.push(await trained(DEFAULT_VARIANT, seed));
  if (name === 'tta') return Promise.all(defaults.map(({ dir, wallS }) => scores(dir, wallS, { tta: true })));
  if (name === 'ensemble-seeds') {
    const dir = await ensemble(`ensemble-seeds-${seeds}${suffix}`, defaults.map((d) => d.dir));
    return [await scores(dir, defaults.reduce((sum, d) => sum + d.wallS, 0))];
  }
  const out: Scores[] = [];
  for (const [i, seed] of seedList.entries()) {
    const v1 = await trained(SECOND_BACKBONE, seed);
    const dir = await ensemble(`ensemble-backbones-seed${seed}${suffix}`, [defaults[i]!.dir, v1.dir]);
    out.push(await scores(dir, defaults[i]!.wallS + v1.wallS));
  }
  return out;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const spread = (values: number[]) => (values.length > 1 ? Math.sqrt(mean(values.map((v) => (v - mean(values)) ** 2))) : 0);
const round = (v: number) => Number(v.toFixed(4));
const table: string[] = ['| variant | runs | val AUC | val accuracy | test AUC | test accuracy | container swap AUC | wall per model |', '|---|---|---|---|---|---|---|---|'];
for (const name of chosen) {
  const runs = await rows(name);
  const column = (key: keyof Omit<Scores, 'format'>) => runs.map((r) => r[key]);
  const formats = runs.map((r) => r.format).filter((v): v is number => v !== null);
  const cell = (values: number[]) => `${mean(values).toFixed(3)} ± ${spread(values).toFixed(3)}`;
  table.push(`| ${name} | ${runs.length} | ${cell(column('valAuc'))} | ${cell(column('valAccuracy'))} | ${cell(column('testAuc'))} | ${cell(column('testAccuracy'))} | ${formats.length ? cell(formats) : 'n/a'} | ${mean(column('wallS')).toFixed(0)} s |`);
  console.log(
    JSON.stringify({
      bench: 'ablation',
      variant: name,
      seeds,
      runs: runs.length,
      schedule: quick ? 'quick' : 'default',
      val_auc: round(mean(column('valAuc'))),
      val_accuracy: round(mean(column('valAccuracy'))),
      test_auc: round(mean(column('testAuc'))),
      test_accuracy: round(mean(column('testAccuracy'))),
      test_auc_sd: round(spread(column('testAuc'))),
      test_accuracy_sd: round(spread(column('testAccuracy'))),
      shortcut_format_auc: formats.length ? round(mean(formats)) : null,
      wall_s: round(mean(column('wallS'))),
    }),
  );
}
console.log(`\n${table.join('\n')}`);
writeFileSync(join(runDir, 'table.md'), `${table.join('\n')}\n`);
