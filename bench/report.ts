/** Shared shape of benchmark results and their printing (table + machine-readable BENCH lines). */

export interface Measurement {
  readonly label: string;
  readonly value: number;
  readonly unit: string;
}

export interface BenchResult {
  /** Stable id used in the `BENCH <id> ratio=<x> ...` line. */
  readonly id: string;
  readonly title: string;
  readonly baseline: Measurement;
  readonly candidate: Measurement;
  /** candidate / baseline (lower is better). */
  readonly ratio: number;
  /** The ratio the project aims to stay under. */
  readonly target: number;
  /** More key=value figures for the BENCH line. */
  readonly extra: Readonly<Record<string, string | number>>;
}

/** A group of benchmarks; `bench/main.ts` runs every registered suite in turn. */
export interface BenchSuite {
  readonly name: string;
  /**
   * Runs only when named (`npm run bench -- <name>`, or `all`): suites that start servers and take
   * minutes. @default false
   */
  readonly optIn?: boolean;
  run(log: (line: string) => void): Promise<BenchResult[]>;
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const a = Math.abs(n);
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : n.toFixed(3);
}

export function table(results: readonly BenchResult[]): string {
  const rows = [
    ['benchmark', 'baseline', 'candidate', 'ratio', 'target', 'ok'],
    ...results.map((r) => [
      r.title,
      `${r.baseline.label}: ${fmt(r.baseline.value)} ${r.baseline.unit}`,
      `${r.candidate.label}: ${fmt(r.candidate.value)} ${r.candidate.unit}`,
      `${r.ratio.toFixed(3)}x`,
      `<= ${r.target.toFixed(2)}x`,
      r.ratio <= r.target ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]): string => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** `BENCH <id> ratio=<x> <extra key=value...> target=<t> ok=<bool>`: the ratio and the figures first. */
export function benchLine(r: BenchResult): string {
  const extra = Object.entries(r.extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
    .join(' ');
  return `BENCH ${r.id} ratio=${r.ratio.toFixed(3)} ${extra} target=${r.target} ok=${r.ratio <= r.target}`.replace('  ', ' ');
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
