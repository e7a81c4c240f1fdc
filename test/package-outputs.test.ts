/** Outputs as JSON: logprobs Maps become objects keyed by token id, through toJSON (JSON.stringify) and the helpers. */
import { describe, expect, it } from 'vitest';
import { LLM, requestOutputToJSON, SamplingParams } from '../bindings/node/index.js';

describe('RequestOutput.toJSON', () => {
  it('writes logprobs and prompt logprobs as plain objects, the rest unchanged', async () => {
    const llm = await LLM.create({ warmup: false, kvCacheMemoryBytes: 8 << 20 });
    try {
      const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 4, logprobs: 2, promptLogprobs: 1 }));
      const c = out.outputs[0];
      const json = JSON.parse(JSON.stringify(out));
      expect(Object.keys(out)).not.toContain('toJSON'); // not enumerable: spreads and equality see the data only
      expect(json).toEqual(requestOutputToJSON(out));
      expect(json.outputs[0].text).toBe(c.text);
      expect(json.outputs[0].tokenIds).toEqual(c.tokenIds);
      expect(json.outputs[0].logprobs).toHaveLength(4);
      json.outputs[0].logprobs.forEach((pos: Record<string, unknown>, i: number) => {
        expect(pos).toEqual(Object.fromEntries([...c.logprobs![i]].map(([id, lp]) => [String(id), lp])));
        expect(Object.keys(pos)).toContain(String(c.tokenIds[i]));
      });
      expect(json.promptLogprobs[0]).toBeNull();
      expect(Object.keys(json.promptLogprobs[1]).length).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(JSON.stringify(c))).toEqual(json.outputs[0]);
      const plain = await llm.generate('Tom', new SamplingParams({ temperature: 0, maxTokens: 2 }));
      expect(JSON.parse(JSON.stringify(plain[0])).outputs[0].logprobs).toBeNull();
    } finally {
      await llm.dispose();
    }
  });
});
