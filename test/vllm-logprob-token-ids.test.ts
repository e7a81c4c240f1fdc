/**
 * vLLM's `logprob_token_ids` (vllm/sampling_params.py `_validate_logprobs`, PR #43463 on the OpenAI routes): each
 * output position returns the logprobs of exactly the asked ids (and the sampled token's), with their ranks, instead
 * of the top-k. Checked against the full row: a logits processor that edits nothing sees the raw row, whose
 * log-softmax at those ids must be what comes back. tinystories-656K; the coverage table is test/VLLM_COVERAGE.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { InvalidArgumentError } from '../src/errors.js';
import { MAX_LOGPROB_TOKEN_IDS } from '../src/sampling-params.js';
import { idLogprobs, logSoftmax } from '../src/sampling/sampler.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const IDS = [5, 17, 300, 2];
const MODEL = 'tiny';

/** The reference: logprob and rank (tokens whose logit is >= its own) of `id` in `row`. */
function reference(row: Float32Array, id: number): [number, number] {
  let rank = 0;
  for (const x of row) if (x >= row[id]) rank++;
  return [logSoftmax(row)[id], rank];
}

describe('logprob_token_ids', () => {
  let llm: LLM;
  let app: ReturnType<typeof createApp>;
  const post = async (path: string, body: object) => {
    const res = await app.fetch(new Request(`http://x${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, ...body }) }));
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    app = createApp({ llm, servedModelName: MODEL, chatTemplate: '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}' });
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it("SamplingParams: vLLM's checks (length, logprobs equal to the length, vocabulary)", async () => {
    expect(new SamplingParams({ logprobTokenIds: IDS }).logprobs).toBe(IDS.length);
    expect(new SamplingParams({ logprobTokenIds: IDS, logprobs: IDS.length }).logprobs).toBe(IDS.length);
    expect(new SamplingParams({ logprobTokenIds: [] }).logprobs).toBeNull();
    expect(() => new SamplingParams({ logprobTokenIds: IDS, logprobs: 2 })).toThrow(/logprobs must equal len\(logprobTokenIds\). Got logprobs=2, len\(logprobTokenIds\)=4/);
    const many = Array.from({ length: MAX_LOGPROB_TOKEN_IDS + 1 }, (_, i) => i);
    expect(() => new SamplingParams({ logprobTokenIds: many })).toThrow(/129 ids, which is greater than max allowed: 128/);
    expect(() => new SamplingParams({ logprobTokenIds: [1.5] as number[] })).toThrow(InvalidArgumentError);
    const V = llm.engine.config.vocabSize;
    await expect(llm.generate('Tom', new SamplingParams({ logprobTokenIds: [3, V, -1, V + 5] }))).rejects.toThrow(
      `token_id(s) [${V}, -1, ${V + 5}] in logprobTokenIds contain out-of-vocab token ids. Vocabulary size: ${V}`,
    );
  });

  it('returns exactly the asked ids with the logprobs and ranks of the full row (greedy and random)', async () => {
    for (const temperature of [0, 0.8]) {
      const rows: Float32Array[] = [];
      const capture = (_ids: readonly number[], row: Float32Array) => (rows.push(row.slice()), row);
      const params = new SamplingParams({ temperature, seed: 7, maxTokens: 5, ignoreEos: true, logprobTokenIds: IDS, logitsProcessors: [capture] });
      const [out] = await llm.generate('Once upon a time', params);
      const { tokenIds, logprobs } = out.outputs[0];
      expect(rows.length).toBe(5);
      expect(logprobs!.length).toBe(5);
      logprobs!.forEach((entry, i) => {
        // The sampled token and the asked ids, nothing else.
        expect(new Set(entry.keys())).toEqual(new Set([tokenIds[i], ...IDS]));
        for (const id of [...IDS, tokenIds[i]]) {
          const [lp, rank] = reference(rows[i], id);
          expect(entry.get(id)!.logprob).toBeCloseTo(lp, 4);
          expect(entry.get(id)!.rank).toBe(rank);
        }
      });
    }
  });

  it('idLogprobs ranks ties and -inf as the sampler does', () => {
    const row = Float32Array.from([1, 3, 3, -Infinity, 0.5, 3]);
    const got = idLogprobs(row, [2, 3, 0, 1]);
    for (const id of [2, 3, 0, 1]) expect(got.get(id)).toEqual([expect.closeTo(reference(row, id)[0], 6), reference(row, id)[1]]);
    expect(got.get(1)![1]).toBe(3);
    expect(got.get(3)![1]).toBe(6);
  });

  it('server: completions and chat return the asked ids as top_logprobs; empty list is the natural top-k', async () => {
    const ids = [5, 17, 300];
    const names = ids.map((id) => `token_id:${id}`);
    const c = await post('/v1/completions', { prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 1, logprob_token_ids: ids, return_tokens_as_token_ids: true });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const lp = c.body.choices[0].logprobs;
    expect(lp.top_logprobs.length).toBe(3);
    lp.top_logprobs.forEach((top: Record<string, number>, i: number) => {
      // The sampled token (completions always list it) and the asked ids, whatever `logprobs` counted.
      expect(new Set(Object.keys(top))).toEqual(new Set([lp.tokens[i], ...names]));
    });
    const ch = await post('/v1/chat/completions', {
      messages: [{ role: 'user', content: 'Tom' }],
      max_tokens: 3,
      temperature: 0,
      logprobs: true,
      top_logprobs: 5,
      logprob_token_ids: ids,
      return_tokens_as_token_ids: true,
    });
    expect(ch.status, JSON.stringify(ch.body)).toBe(200);
    expect(ch.body.choices[0].logprobs.content.length).toBe(3);
    for (const pos of ch.body.choices[0].logprobs.content) {
      // Exactly the asked ids, in the order asked (their count replaces top_logprobs: 5).
      expect(pos.top_logprobs.map((t: { token: string }) => t.token)).toEqual(names);
    }
    const natural = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Tom' }], max_tokens: 2, temperature: 0, logprobs: true, top_logprobs: 2, logprob_token_ids: [] });
    expect(natural.body.choices[0].logprobs.content[0].top_logprobs.length).toBe(2);
    // Without the logprobs switch nothing is returned.
    const off = await post('/v1/completions', { prompt: 'Tom', max_tokens: 2, logprob_token_ids: ids });
    expect(off.body.choices[0].logprobs).toBeNull();
  });

  it('server: 400s (echo only, beam search, too many, out of vocabulary)', async () => {
    const bad = async (path: string, body: object, param: string, message: RegExp) => {
      const r = await post(path, body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.param).toBe(param);
      expect(r.body.error.message).toMatch(message);
    };
    await bad('/v1/completions', { prompt: 'Tom', echo: true, max_tokens: 0, logprobs: 1, logprob_token_ids: [5] }, 'logprob_token_ids', /echo with max_tokens 0/);
    await bad('/v1/completions', { prompt: 'Tom', use_beam_search: true, n: 2, logprobs: 1, logprob_token_ids: [5] }, 'logprob_token_ids', /beam search/);
    await bad('/v1/completions', { prompt: 'Tom', logprobs: 1, logprob_token_ids: Array.from({ length: 129 }, (_, i) => i) }, 'logprob_token_ids', /max allowed: 128/);
    await bad('/v1/chat/completions', { messages: [{ role: 'user', content: 'Tom' }], logprobs: true, logprob_token_ids: [1, 1e6] }, 'logprob_token_ids', /\[1000000\] in logprob_token_ids contain out-of-vocab/);
  });
});
