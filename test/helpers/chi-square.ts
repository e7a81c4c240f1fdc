/** Chi-square checks shared by the sampling tests (speculative decoding's rejection sampler and engine outputs). */
import { expect } from 'vitest';

/** Pearson's chi-square of observed counts against probabilities p (cells with p > 0; a cell with p = 0 must be empty). */
export function chiSquare(counts: number[], p: ArrayLike<number>, n: number): { stat: number; df: number } {
  let stat = 0;
  let df = -1;
  for (let t = 0; t < counts.length; t++) {
    if (p[t] === 0) {
      expect(counts[t], `token ${t} has probability 0`).toBe(0);
      continue;
    }
    stat += (counts[t] - n * p[t]) ** 2 / (n * p[t]);
    df++;
  }
  return { stat, df };
}

/** Chi-square critical values at p = 0.001 by degrees of freedom. */
export const CRIT: Record<number, number> = { 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32 };

/**
 * Two-sample chi-square per position `from..to - 1` over two equally large sets of token rows (tokens seen fewer
 * than 10 times in all pooled into one cell): each position's tokens must look drawn from one distribution
 * (p = 0.001; chi2 = sum (x - y)^2 / (x + y) for equal sample sizes, df = cells - 1).
 */
export function expectSameDistribution(a: number[][], b: number[][], from: number, to: number): void {
  for (let pos = from; pos < to; pos++) {
    const count = (rows: number[][]) => rows.reduce((m, r) => m.set(r[pos], (m.get(r[pos]) ?? 0) + 1), new Map<number, number>());
    const ca = count(a);
    const cb = count(b);
    const cells: [number, number][] = [];
    let rest: [number, number] = [0, 0];
    for (const t of new Set([...ca.keys(), ...cb.keys()])) {
      const x = ca.get(t) ?? 0;
      const y = cb.get(t) ?? 0;
      if (x + y >= 10) cells.push([x, y]);
      else rest = [rest[0] + x, rest[1] + y];
    }
    if (rest[0] + rest[1] > 0) cells.push(rest);
    const stat = cells.reduce((acc, [x, y]) => acc + (x - y) ** 2 / (x + y), 0);
    const df = cells.length - 1;
    if (df < 1) continue;
    // The 0.001 critical value, by the Wilson-Hilferty approximation.
    const crit = df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;
    expect(stat, `position ${pos}: chi2 ${stat.toFixed(1)} over ${df} df`).toBeLessThan(crit);
  }
}
