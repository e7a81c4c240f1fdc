/** The benchmarks' printouts: vLLM's label / value tables and numpy's percentiles. */

/** A table of label / value rows, as vLLM's bench printouts. */
export function table(title: string, rows: [string, string | number][]): string {
  const width = 50;
  const pad = Math.max(0, width - title.length - 2);
  const lines = [`${'='.repeat(Math.floor(pad / 2))} ${title} ${'='.repeat(Math.ceil(pad / 2))}`];
  for (const [k, val] of rows) {
    if (val === '') lines.push(`${'-'.repeat(Math.floor((width - k.length - 2) / 2))} ${k} ${'-'.repeat(Math.ceil((width - k.length - 2) / 2))}`);
    else lines.push(`${`${k}:`.padEnd(40)}${String(val).padStart(width - 40)}`);
  }
  lines.push('='.repeat(width));
  return `${lines.join('\n')}\n`;
}

/** The p-th percentile (0..100) of sorted values, linearly interpolated (numpy's default). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const x = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}
