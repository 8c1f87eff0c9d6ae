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
