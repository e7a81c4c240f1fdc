/**
 * vLLM's `repetition_detection` (sampling_params.py RepetitionDetectionParams and its checks,
 * v1/core/sched/utils.py check_sequence_repetition / check_stop, FINISHED_REPETITION -> finish reason 'repetition',
 * stop reason 'repetition_detected'): the check on token lists, then the engine on tinystories-656K with a logits
 * processor writing a known cycle, and the server. The coverage table is test/VLLM_COVERAGE.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { endsInRepetition } from '../src/engine/repetition.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const rd = (maxPatternSize: number, minPatternSize: number, minCount: number) => ({ maxPatternSize, minPatternSize, minCount });

describe('endsInRepetition (check_sequence_repetition)', () => {
  it('finds a pattern repeated minCount times at the end, within the sizes', () => {
    expect(endsInRepetition([1, 2, 3, 5, 6, 5, 6, 5, 6], rd(2, 2, 3))).toBe(true);
    expect(endsInRepetition([1, 2, 3, 1, 2, 3, 1, 2, 4], rd(3, 3, 3))).toBe(false);
    expect(endsInRepetition([1, 2, 3, 4, 5, 6], rd(3, 1, 2))).toBe(false);
    expect(endsInRepetition([9, 1, 2, 3, 1, 2, 3], rd(3, 0, 2))).toBe(true);
    // Too short for the count; the pattern not at the end; sizes outside the range; off.
    expect(endsInRepetition([7, 7], rd(1, 1, 3))).toBe(false);
    expect(endsInRepetition([5, 6, 5, 6, 1], rd(2, 1, 2))).toBe(false);
    expect(endsInRepetition([5, 6, 5, 6], rd(1, 1, 2))).toBe(false);
    expect(endsInRepetition([7, 7, 7, 7], rd(0, 0, 2))).toBe(false);
    // A run of one token is a pattern of every length that divides it.
    expect(endsInRepetition([7, 7, 7, 7], rd(2, 2, 2))).toBe(true);
  });

  it("SamplingParams: vLLM's checks and messages", () => {
    expect(new SamplingParams({ repetitionDetection: { maxPatternSize: 4, minCount: 3 } }).repetitionDetection).toEqual(rd(4, 0, 3));
    expect(() => new SamplingParams({ repetitionDetection: rd(2, 3, 2) })).toThrow(/min_pattern_size <= max_pattern_size/);
    expect(() => new SamplingParams({ repetitionDetection: rd(-1, 0, 2) })).toThrow(/must be >=0/);
    expect(() => new SamplingParams({ repetitionDetection: rd(2, 0, 1) })).toThrow(/min_count must be >= 2 to detect repetitive patterns/);
    expect(() => new SamplingParams({ repetitionDetection: { maxPatternSize: 2, bogus: 1 } as never })).toThrow(/repetitionDetection must be an object/);
    expect(new SamplingParams({ repetitionDetection: rd(0, 0, 0) }).repetitionDetection).toEqual(rd(0, 0, 0));
  });
});

describe('repetition_detection on tinystories-656K', () => {
  let llm: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  /** A logits processor that makes the model write `cycle` over and over. */
  const writes = (cycle: number[]) => (ids: readonly number[], row: Float32Array) => {
    row.fill(-Infinity);
    row[cycle[ids.length % cycle.length]] = 0;
    return row;
  };

  it('ends the request when the cycle has repeated minCount times: finish reason repetition', async () => {
    const cases: [number[], ReturnType<typeof rd>, number][] = [
      [[5, 6, 7], rd(3, 2, 2), 6],
      [[5, 6, 7], rd(3, 1, 3), 9],
      [[5], rd(1, 1, 4), 4],
      [[5], rd(2, 2, 2), 4],
      [[5, 6, 7], rd(2, 1, 2), 20], // the 3-token cycle is longer than maxPatternSize: never found
    ];
    for (const [cycle, detection, n] of cases) {
      const params = new SamplingParams({ temperature: 0, maxTokens: 20, ignoreEos: true, logitsProcessors: [writes(cycle)], repetitionDetection: detection });
      const [out] = await llm.generate('Once upon a time', params);
      const o = out.outputs[0];
      expect(o.tokenIds.length, JSON.stringify([cycle, detection])).toBe(n);
      expect(o.tokenIds).toEqual(Array.from({ length: n }, (_, i) => cycle[i % cycle.length]));
      expect([o.finishReason, o.stopReason]).toEqual(n < 20 ? ['repetition', 'repetition_detected'] : ['length', null]);
    }
    expect(llm.engine.metrics.requestsFinished.repetition).toBe(4);
  });

  it('server: repetition_detection on completions and chat; 400 for bad values', async () => {
    const app = createApp({ llm, servedModelName: 'tiny', chatTemplate: '{% for m in messages %}{{ m.content }}{% endfor %}' });
    const post = async (path: string, body: object) => {
      const res = await app.fetch(new Request(`http://x${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', ...body }) }));
      return { status: res.status, body: (await res.json()) as any };
    };
    // One allowed token: greedy writes it again and again.
    const body = { max_tokens: 10, temperature: 0, ignore_eos: true, allowed_token_ids: [9], repetition_detection: { max_pattern_size: 1, min_count: 3 } };
    const c = await post('/v1/completions', { prompt: 'Tom', ...body, return_token_ids: true });
    expect(c.body.choices[0]).toMatchObject({ finish_reason: 'repetition', stop_reason: 'repetition_detected', token_ids: [9, 9, 9] });
    const ch = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Tom' }], ...body });
    expect(ch.body.choices[0]).toMatchObject({ finish_reason: 'repetition', stop_reason: 'repetition_detected' });
    expect(ch.body.usage.completion_tokens).toBe(3);
    const bad = await post('/v1/completions', { prompt: 'Tom', repetition_detection: { max_pattern_size: 2, min_count: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ param: 'repetition_detection' });
    expect(bad.body.error.message).toMatch(/min_count must be >= 2/);
  });
});
