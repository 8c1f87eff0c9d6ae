/**
 * Shortcut probes: does the model's COVID score follow something other than the lungs?
 *  - formatAuc: inside the non-COVID class (where training has both containers), the AUC with which the COVID
 *    probability separates PNG (positive) from JPEG (negative). PNG is the positive side because in COVID-CT's
 *    training set COVID is mostly PNG: a model that learned "PNG means COVID" scores above 0.5.
 *  - colourAuc: inside each class, the AUC with which the COVID probability separates colour-marked (positive)
 *    from clean images; marks are mostly on COVID images, so a model that learned them scores above 0.5.
 *  - formatSwap (counterfactual, defined on any set): the non-COVID PNG images scored again after a JPEG round
 *    trip; the AUC with which the score separates the originals (positive) from their JPEG copies, and the mean
 *    change. The images are the same, only the container's artefacts differ.
 * Near 0.5 is good; far below 0.5 is the same shortcut learned the other way (`strength` folds both sides).
 * A probe is null when one of its two groups is empty (e.g. the test set is all PNG).
 */
import type { ImageFacts } from '../data/inspect.ts';
import { rocAuc } from './metrics.ts';

export interface ProbeRecord {
  path: string;
  /** 1 = COVID. */
  label: 0 | 1;
  /** The model's COVID probability. */
  probability: number;
}

export type ProbeFacts = Pick<ImageFacts, 'format' | 'colourMarked'>;

export interface ProbeAuc {
  auc: number | null;
  /** max(auc, 1 - auc): how strongly the score separates the groups in either direction. */
  strength: number | null;
  /** Images on the positive and negative side. */
  positives: number;
  negatives: number;
}

export interface ShortcutProbes {
  /** PNG (positive) vs JPEG inside the non-COVID class. */
  formatAuc: number | null;
  /** Colour-marked (positive) vs clean, per class. */
  colourAuc: { covid: number | null; nonCovid: number | null };
  /** The same probes with their group sizes and strength. */
  details: { format: ProbeAuc; colourCovid: ProbeAuc; colourNonCovid: ProbeAuc };
}

/** AUC of `scores` for positives vs negatives; null when either side is empty. */
export function groupAuc(positives: readonly number[], negatives: readonly number[]): ProbeAuc {
  if (positives.length === 0 || negatives.length === 0) return { auc: null, strength: null, positives: positives.length, negatives: negatives.length };
  const auc = rocAuc([...positives.map(() => 1), ...negatives.map(() => 0)], [...positives, ...negatives]);
  return { auc, strength: Math.max(auc, 1 - auc), positives: positives.length, negatives: negatives.length };
}

/**
 * The shortcut probes of one set of predictions. `facts` is keyed by the records' paths (see `imageFacts` in
 * src/data/inspect.ts); a record without facts is an error. Formats other than PNG and JPEG are left out of formatAuc.
 */
export function shortcutProbes(records: readonly ProbeRecord[], facts: ReadonlyMap<string, ProbeFacts>): ShortcutProbes {
  const factsOf = (r: ProbeRecord): ProbeFacts => {
    const f = facts.get(r.path);
    if (!f) throw new Error(`shortcutProbes: no image facts for ${r.path}`);
    return f;
  };
  const nonCovid = records.filter((r) => r.label === 0);
  const covid = records.filter((r) => r.label === 1);
  const format = groupAuc(
    nonCovid.filter((r) => factsOf(r).format === 'png').map((r) => r.probability),
    nonCovid.filter((r) => factsOf(r).format === 'jpeg').map((r) => r.probability),
  );
  const colour = (members: readonly ProbeRecord[]) =>
    groupAuc(
      members.filter((r) => factsOf(r).colourMarked).map((r) => r.probability),
      members.filter((r) => !factsOf(r).colourMarked).map((r) => r.probability),
    );
  const colourCovid = colour(covid);
  const colourNonCovid = colour(nonCovid);
  return {
    formatAuc: format.auc,
    colourAuc: { covid: colourCovid.auc, nonCovid: colourNonCovid.auc },
    details: { format, colourCovid, colourNonCovid },
  };
}

export interface FormatSwapProbe extends ProbeAuc {
  /** JPEG quality of the round trip. */
  quality: number;
  /** Mean of (score of the JPEG copy - score of the original PNG). */
  meanShift: number | null;
}

/** The counterfactual container probe from paired scores: originals[i] and its JPEG copy copies[i]. */
export function formatSwapProbe(originals: readonly number[], copies: readonly number[], quality: number): FormatSwapProbe {
  if (originals.length !== copies.length) throw new Error(`formatSwapProbe: ${originals.length} originals but ${copies.length} copies`);
  const shift = originals.length ? copies.reduce((sum, c, i) => sum + c - originals[i]!, 0) / originals.length : null;
  return { ...groupAuc(originals, copies), quality, meanShift: shift };
}
