/**
 * vLLM's `repetition_detection` (RepetitionDetectionParams, vllm/v1/core/sched/utils.py check_sequence_repetition):
 * a request ends, finish reason 'repetition' and stop reason 'repetition_detected', when its output ends with a
 * pattern of `minPatternSize..maxPatternSize` tokens repeated `minCount` times in a row.
 *
 * @example
 *   endsInRepetition([1, 2, 3, 5, 6, 5, 6, 5, 6], { maxPatternSize: 2, minPatternSize: 2, minCount: 3 }); // true
 */

/** vLLM's RepetitionDetectionParams (camelCase); 0 max pattern size disables it. */
export interface RepetitionDetection {
  /** The longest pattern looked for (0: off). */
  maxPatternSize: number;
  /** The shortest (0 means 1). */
  minPatternSize: number;
  /** How many times in a row it must repeat (>= 2 when on). */
  minCount: number;
}

/** vLLM's checks (RepetitionDetectionParams.__post_init__), its messages; returns the error or null. */
export function repetitionDetectionError(r: RepetitionDetection): string | null {
  const { maxPatternSize: max, minPatternSize: min, minCount } = r;
  if (![max, min, minCount].every((v) => Number.isSafeInteger(v))) return 'maxPatternSize, minPatternSize and minCount must be integers.';
  if (max < 0 || min < 0 || min > max) {
    return 'max_pattern_size, min_pattern_size must be >=0, with min_pattern_size <= max_pattern_size. Set both to 0 to disable repetitive pattern detection.';
  }
  if (max > 0 && minCount < 2) {
    return 'min_count must be >= 2 to detect repetitive patterns in engine output. If you do not wish to detect repetitive patterns, set max_pattern_size to 0.';
  }
  return null;
}

/** True when `ids` ends with a pattern repeated `minCount` times (vLLM's check_sequence_repetition). */
export function endsInRepetition(ids: readonly number[], r: RepetitionDetection): boolean {
  const min = Math.max(1, r.minPatternSize);
  if (r.maxPatternSize <= 0 || r.minCount < 2 || min > r.maxPatternSize) return false;
  const n = ids.length;
  for (let len = min; len <= r.maxPatternSize; len++) {
    if (len * r.minCount > n) return false;
    let repeats = true;
    // The last `len` tokens against each of the `minCount - 1` copies before them.
    for (let i = 1; i <= len && repeats; i++) {
      for (let m = 1; m < r.minCount; m++) {
        if (ids[n - (len * m + i)] !== ids[n - i]) {
          repeats = false;
          break;
        }
      }
    }
    if (repeats) return true;
  }
  return false;
}
