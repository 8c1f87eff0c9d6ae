// Arguments of the training benchmarks: the bench's own options before `--`, `covid-ct train` flags after it.
export function benchArgs(argv: readonly string[]): { option(name: string): string | undefined; flag(name: string): boolean; trainFlags: string[] } {
  const dashDash = argv.indexOf('--');
  const own = dashDash >= 0 ? argv.slice(0, dashDash) : [...argv];
  return {
    option: (name) => (own.includes(name) ? own[own.indexOf(name) + 1] : undefined),
    flag: (name) => own.includes(name),
    trainFlags: dashDash >= 0 ? argv.slice(dashDash + 1) : [],
  };
}

/** `--folds k` (default 5) and `--seed S` (default 1) of the cross-validation benchmarks, checked. */
export function foldsAndSeed(option: (name: string) => string | undefined): { folds: number; seed: number } {
  const folds = Number(option('--folds') ?? 5);
  const seed = Number(option('--seed') ?? 1);
  if (!Number.isInteger(folds) || folds < 2 || folds > 20) throw new Error(`--folds must be an integer in [2, 20], got ${option('--folds')}`);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${option('--seed')}`);
  return { folds, seed };
}
