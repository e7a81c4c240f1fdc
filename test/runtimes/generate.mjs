// Run by test/runtimes.test.ts under Node, Deno and Bun: the built package (dist/) with its embedded default model
// and device 'auto' (no Vulkan driver: the CPU backend); prints one JSON line with the greedy ids and the log lines.
import { LLM, SamplingParams } from '../../dist/index.js';

import run from './prompts.json' with { type: 'json' };

const logs = [];
const llm = await LLM.create({ device: 'auto', log: (line) => logs.push(line) });
const outs = await llm.generate(run.prompts, new SamplingParams({ temperature: 0, maxTokens: run.maxTokens }));
await llm.dispose();
console.log(JSON.stringify({ ids: outs.map((o) => o.outputs[0].tokenIds), text: outs[0].outputs[0].text, logs }));
