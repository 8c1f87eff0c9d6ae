import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import sharp from 'sharp';
import { PROJECT_ROOT, SPLIT_METHODS } from '../config/index.ts';
import type { SplitMethod } from '../config/index.ts';
import { augmenter } from '../data/augment.ts';
import { listImages, listSplit } from '../data/dataset.ts';
import { inspectDataset, writeGrid } from '../data/inspect.ts';
import type { InspectReport } from '../data/inspect.ts';
import { Rng } from '../data/random.ts';
import { lungMask } from '../data/preprocess/lungs.ts';
import type { LungMask } from '../data/preprocess/lungs.ts';
import type { DecodedImage } from '../data/decode.ts';
import { DEFAULT_GROUP_COLUMN, splitTrainingImages } from '../data/split.ts';
import { addCommonFlags, addFoldFlags, context, foldOverrides } from './options.ts';
import type { CommonFlags } from './options.ts';

function printInspect(report: InspectReport): void {
  console.log(`dataset ${report.dataset}`);
  for (const c of report.classes) {
    const fmt = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(
      `${c.split.padEnd(5)} ${c.className.padEnd(12)} ${String(c.count).padStart(4)} images` +
        ` | ${fmt(c.formats)} | modes: ${fmt(c.modes)} | width ${c.width.min}-${c.width.max}, height ${c.height.min}-${c.height.max}` +
        ` | not grey ${c.notGrey}, colour marks ${c.colourMarked}${c.sampleGrid ? ` | grid ${c.sampleGrid}` : ''}`,
    );
    const q = (x: { q1: number; median: number; q3: number }) => `${x.q1}/${x.median}/${x.q3}`;
    console.log(
      `${''.padEnd(18)} shares: ${Object.entries(c.shares.formats).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}` +
        ` | not grey ${c.shares.notGrey.toFixed(2)} | colour marks ${c.shares.colourMarked.toFixed(2)}` +
        ` | size quartiles (q1/median/q3) width ${q(c.sizeQuartiles.width)}, height ${q(c.sizeQuartiles.height)}`,
    );
  }
  const exact = report.duplicates.filter((d) => d.kind === 'exact');
  const near = report.duplicates.filter((d) => d.kind === 'near');
  console.log(`exact duplicates: ${exact.length}; near-duplicates: ${near.length} (difference hash, then thumbnail correlation)`);
  for (const d of report.duplicates) {
    console.log(`  ${d.kind} ${d.where}${d.labelConflict ? ' LABEL CONFLICT' : ''} (hash ${d.distance} bits, correlation ${d.correlation}): ${d.a} ~ ${d.b}`);
  }
  console.log(`unreadable files: ${report.unreadable.length}`);
  for (const u of report.unreadable) console.log(`  ${u.file}: ${u.reason}`);
}

/** The image with the lungs tinted green and their box outlined in yellow; a red frame when none were found. */
function drawLungs(image: DecodedImage, lungs: LungMask): Uint8Array {
  const { width: w } = image;
  const out = Uint8Array.from(image.data);
  for (let i = 0; i < lungs.mask.length; i++) {
    if (!lungs.mask[i]) continue;
    out[i * 3] = Math.round(out[i * 3]! * 0.6);
    out[i * 3 + 1] = Math.round(out[i * 3 + 1]! * 0.6 + 255 * 0.4);
    out[i * 3 + 2] = Math.round(out[i * 3 + 2]! * 0.6);
  }
  const { x, y, width, height } = lungs.box;
  const colour = lungs.found ? [255, 220, 0] : [255, 0, 0];
  const thick = lungs.found ? 1 : 3;
  for (let yy = y; yy < y + height; yy++) {
    for (let xx = x; xx < x + width; xx++) {
      const edge = xx - x < thick || x + width - 1 - xx < thick || yy - y < thick || y + height - 1 - yy < thick;
      if (edge) out.set(colour, (yy * w + xx) * 3);
    }
  }
  return out;
}

export function dataCommand(): Command {
  const data = new Command('data').description('inspect, split and augment datasets');

  addCommonFlags(
    data
      .command('inspect')
      .description('counts, formats, modes, sizes, duplicates and unreadable files per split and class; sample grids')
      .option('--json', 'print the report as JSON')
      .option('--out <dir>', 'folder for the sample grid PNGs', join(PROJECT_ROOT, 'runs', 'inspect')),
  ).action(async (flags: CommonFlags & { json?: boolean; out: string }) => {
    const { config, datasetDir, cache } = context(flags);
    const report = await inspectDataset(datasetDir, config, cache, { gridDir: resolve(flags.out), strict: config.data.strict });
    if (flags.json) console.log(JSON.stringify(report, null, 2));
    else printInspect(report);
  });

  addFoldFlags(addCommonFlags(
    data
      .command('split')
      .description('train/validation split of the training folder, written as a JSON manifest')
      .addOption(new Option('--method <method>', 'how to split').choices(SPLIT_METHODS as SplitMethod[]).default('ordered'))
      .option('--group-column <name>', `method source: the group column of provenance.csv or metadata.csv`, DEFAULT_GROUP_COLUMN)
      .option('--out <file>', 'manifest path', 'split.json'),
  )).action(async (flags: CommonFlags & { method: SplitMethod; out: string; groupColumn: string; folds?: number; fold?: number }) => {
    const { config, datasetDir, cache } = context(flags, { split: flags.method, ...foldOverrides(flags) });
    const records = listSplit(datasetDir, 'train', config);
    const manifest = await splitTrainingImages(records, datasetDir, config, cache, { groupColumn: flags.groupColumn });
    await mkdir(dirname(resolve(flags.out)), { recursive: true });
    await writeFile(flags.out, `${JSON.stringify(manifest, null, 2)}\n`);
    for (const [name, c] of Object.entries(manifest.counts)) console.log(`${name}: train ${c.train}, val ${c.val}`);
    console.log(`${config.split === 'source' ? `groups (${flags.groupColumn})` : 'patients'} on both sides: ${manifest.leakage.groupsOnBothSides}`);
    console.log(`wrote ${flags.out}`);
  });

  addCommonFlags(
    data
      .command('lungs')
      .description('lung masks (classical segmentation) over 9 samples per class, and how many images of the split get plausible lungs')
      .requiredOption('--preview <file>', 'PNG to write: one 3x3 grid per class, side by side in class order')
      .addOption(new Option('--split <split>', 'split folder').choices(['train', 'test']).default('train')),
  ).action(async (flags: CommonFlags & { preview: string; split: 'train' | 'test' }) => {
    const { config, datasetDir, cache } = context(flags);
    const cell = 256;
    const records = listSplit(datasetDir, flags.split, config);
    const rng = new Rng(config.seed);
    const scratch = await mkdtemp(join(tmpdir(), 'covid-ct-lungs-'));
    const grids: string[] = [];
    try {
      for (const spec of config.data.classes) {
        const members = records.filter((r) => r.className === spec.name);
        const reasons = new Map<string, number>();
        let found = 0;
        for (const r of members) {
          const lungs = lungMask(await cache.load(r.path, cell));
          if (lungs.found) found++;
          else {
            const reason = lungs.reason!.replace(/\d+(\.\d+)? %/g, 'N %');
            reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          }
        }
        console.log(`${flags.split} ${spec.name}: plausible lungs in ${found}/${members.length} images`);
        for (const [reason, n] of reasons) console.log(`  ${n} without: ${reason}`);
        const samples = rng.shuffled(members).slice(0, 9);
        const grid = join(scratch, `${spec.name}.png`);
        await writeGrid(samples.map((r) => r.path), cache, grid, (image) => drawLungs(image, lungMask(image)));
        grids.push(grid);
        console.log(`  samples (row by row): ${samples.map((r) => r.relPath.slice(r.relPath.lastIndexOf('/') + 1)).join(', ')}`);
      }
      const side = cell * 3 + 8;
      await mkdir(dirname(resolve(flags.preview)), { recursive: true });
      await sharp({ create: { width: grids.length * (side + 16) - 16, height: side, channels: 3, background: '#ffffff' } })
        .composite(grids.map((input, i) => ({ input, left: i * (side + 16), top: 0 })))
        .png()
        .toFile(resolve(flags.preview));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    console.log(`wrote ${flags.preview} (${config.data.classes.map((c) => c.name).join(' | ')}; green: lungs, yellow: their box, red frame: no plausible lungs)`);
  });

  addCommonFlags(
    data
      .command('augment')
      .description('a 3x3 grid of augmented views of one image (the first training image unless --image)')
      .requiredOption('--preview <file>', 'PNG to write')
      .option('--image <file>', 'image to augment'),
  ).action(async (flags: CommonFlags & { preview: string; image?: string }) => {
    const { config, datasetDir, cache } = context(flags);
    const image = flags.image ?? listImages(datasetDir, config.data.trainDir, config.data.classes)[0]!.path;
    const augment = augmenter(config.augment);
    const rng = new Rng(config.seed);
    await writeGrid(Array(9).fill(image), cache, resolve(flags.preview), (decoded, index) => (index === 0 ? decoded.data : augment(decoded, rng)));
    console.log(`wrote ${flags.preview} (top left: the original; the others: augmented views of ${image}, seed ${config.seed})`);
  });

  return data;
}
