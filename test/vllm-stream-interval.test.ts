/**
 * vLLM's `stream_interval` (sampling_params.py: at least 1; the engine's --stream-interval, which a request may raise
 * but not lower; the first and final outputs at once): streamed chunks carry that many new tokens. Checked on the
 * chunks' token_ids (return_token_ids) of streamed completions on tinystories-656K.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

describe('stream_interval', () => {
  let llm: LLM;
  let every2: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    every2 = await loadLLM(modelDir('tinystories-656K'), { streamInterval: 2 });
  });
  afterAll(async () => {
    await llm?.dispose();
    await every2?.dispose();
  });

  /** The token counts of a streamed completion's chunks, and all its ids. */
  async function chunks(target: LLM, body: object): Promise<{ sizes: number[]; ids: number[] }> {
    const app = createApp({ llm: target, servedModelName: 'tiny' });
    const res = await app.fetch(
      new Request('http://x/v1/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'Once upon a time', temperature: 0, ignore_eos: true, stream: true, return_token_ids: true, ...body }),
      }),
    );
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
    const withIds = events.filter((e) => e.choices?.[0]?.token_ids?.length);
    return { sizes: withIds.map((e) => e.choices[0].token_ids.length), ids: withIds.flatMap((e) => e.choices[0].token_ids) };
  }

  it('chunks carry stream_interval tokens; the first and the last go at once; the ids are the same', async () => {
    const plain = await chunks(llm, { max_tokens: 8 });
    expect(plain.sizes).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    const by3 = await chunks(llm, { max_tokens: 8, stream_interval: 3 });
    expect(by3.sizes).toEqual([1, 3, 3, 1]);
    expect(by3.ids).toEqual(plain.ids);
  });

  it("the engine's interval is the floor a request can only raise", async () => {
    expect((await chunks(every2, { max_tokens: 6 })).sizes).toEqual([1, 2, 2, 1]);
    expect((await chunks(every2, { max_tokens: 6, stream_interval: 1 })).sizes).toEqual([1, 2, 2, 1]);
    expect((await chunks(every2, { max_tokens: 6, stream_interval: 4 })).sizes).toEqual([1, 4, 1]);
  });

  it('is checked as vLLM checks it', async () => {
    expect(() => new SamplingParams({ streamInterval: 0 })).toThrow(/streamInterval must be at least 1, got 0/);
    await expect(loadLLM(modelDir('tinystories-656K'), { streamInterval: 0 })).rejects.toThrow(/streamInterval must be an integer >= 1/);
  });
});
