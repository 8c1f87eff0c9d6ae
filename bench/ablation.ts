// Preprocessing variants trained and evaluated with the same schedule and seeds; choices are read from the
// validation columns only (the test columns are reported, never used to choose). One JSON line per variant.
//   npm run bench -- ablation [--seeds N] [--quick] [--variants a,b]
// --quick: 1 round of 10 + 10 epochs over 4 views, for a first look within minutes per run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreprocessConfig } from '../src/config/index.ts';
import { PROJECT_ROOT } from '../src/config/index.ts';
import { main } from '../src/cli/main.ts';

const VARIANTS: Record<string, Partial<PreprocessConfig>> = {
  baseline: { grayscale: false, jpegReencode: false, lungCrop: false },
  grayscale: { grayscale: true, jpegReencode: false, lungCrop: false },
  'grayscale+jpeg': { grayscale: true, jpegReencode: true, lungCrop: false },
  'grayscale+jpeg+lungs': { grayscale: true, jpegReencode: true, lungCrop: true },
};

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const seeds = Number(option('--seeds') ?? 3);
const quick = args.includes('--quick');
const chosen = option('--variants')?.split(',') ?? Object.keys(VARIANTS);
for (const name of chosen) if (!VARIANTS[name]) throw new Error(`unknown variant '${name}'; variants: ${Object.keys(VARIANTS).join(', ')}`);
const schedule = quick ? ['--rounds', '1', '--epochs1', '10', '--epochs2', '10', '--views', '4'] : [];
const runDir = join(PROJECT_ROOT, 'runs', `ablation-${Date.now()}`);
mkdirSync(runDir, { recursive: true });

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const spread = (values: number[]) => (values.length > 1 ? Math.sqrt(mean(values.map((v) => (v - mean(values)) ** 2))) : 0);
for (const name of chosen) {
  const runs: Array<{ valAuc: number; valAccuracy: number; testAuc: number; testAccuracy: number; format: number | null; wallS: number }> = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const out = join(runDir, `${name}-seed${seed}`);
    const configFile = `${out}.config.json`;
    writeFileSync(configFile, JSON.stringify({ preprocess: VARIANTS[name] }));
    const started = performance.now();
    const code = await main(['node', 'covid-ct', 'train', '--config', configFile, '--seed', String(seed), '--out', out, '--evaluate', ...schedule]);
    if (code !== 0) throw new Error(`variant ${name} seed ${seed}: train exited ${code}`);
    const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    const metrics = JSON.parse(readFileSync(join(out, 'evaluation', 'metrics.json'), 'utf8'));
    runs.push({ valAuc: card.validation.auc, valAccuracy: card.validation.accuracy, testAuc: metrics.auc, testAccuracy: metrics.accuracy, // The container probe is defined on validation only (the test set is all PNG).
      format: metrics.shortcutProbes.validation?.formatAuc ?? null, wallS: (performance.now() - started) / 1000 });
  }
  const column = (key: 'valAuc' | 'valAccuracy' | 'testAuc' | 'testAccuracy' | 'wallS') => runs.map((r) => r[key]);
  const formats = runs.map((r) => r.format).filter((v): v is number => v !== null);
  const round = (v: number) => Number(v.toFixed(4));
  console.log(
    `| ${name} | ${['valAuc', 'valAccuracy', 'testAuc', 'testAccuracy'].map((k) => `${mean(column(k as 'valAuc')).toFixed(3)} ± ${spread(column(k as 'valAuc')).toFixed(3)}`).join(' | ')} | ${formats.length ? mean(formats).toFixed(3) : 'n/a'} | ${mean(column('wallS')).toFixed(0)} s |`,
  );
  console.log(
    JSON.stringify({
      bench: 'ablation',
      variant: name,
      seeds,
      schedule: quick ? 'quick' : 'default',
      val_auc: round(mean(column('valAuc'))),
      val_accuracy: round(mean(column('valAccuracy'))),
      test_auc: round(mean(column('testAuc'))),
      test_accuracy: round(mean(column('testAccuracy'))),
      shortcut_format_auc: formats.length ? round(mean(formats)) : null,
      wall_s: round(mean(column('wallS'))),
    }),
  );
}
