// The edge function both isolates run (test/runtimes.test.ts bundles it, as wrangler and Vercel do): the embedded
// model from the bytes the isolate was given, device 'auto' (no navigator.gpu there: the CPU backend), the OpenAI
// handler at /v1/*, and /ids: the run's greedy token ids through llm.generate, with the log lines.
import { LLM, SamplingParams, createApp, edgePlatform } from '../../dist/edge.js';
import run from './prompts.json';

/** `assets`: edgePlatform's ({ wasm: { core, cpu }, model: { file: bytes or text } }). */
export function edgeApp(assets) {
  const logs = [];
  let ready;
  const load = async () => {
    const llm = await LLM.create({ platform: edgePlatform(assets), device: 'auto', log: (line) => logs.push(line) });
    return { llm, app: createApp({ llm, servedModelName: 'tinystories' }) };
  };
  return async (request) => {
    // Loaded on the first request: an isolate's global scope may not do asynchronous work.
    ready ??= load();
    let loaded;
    try {
      loaded = await ready;
    } catch (err) {
      ready = undefined; // the next request tries again
      return Response.json({ error: { message: err.message, type: 'InternalServerError' } }, { status: 500 });
    }
    const { llm, app } = loaded;
    if (new URL(request.url).pathname !== '/ids') return app.fetch(request);
    const outs = await llm.generate(run.prompts, new SamplingParams({ temperature: 0, maxTokens: run.maxTokens }));
    return Response.json({ ids: outs.map((o) => o.outputs[0].tokenIds), logs });
  };
}
