// The webgpu-llm demo: load a model (the embedded one, a URL, or a hub repo id), stream a completion or a chat
// reply token by token, and show tokens/s. By default the engine runs in a Web Worker (WorkerLLM, the same API),
// so the page stays responsive while it loads and generates. Served by `npx webgpu-llm demo` (or any static server that serves
// demo/, dist/ and models/ side by side). `?model=...` in the page URL picks the model to load first.
import { applyChatTemplate, LLM, SamplingParams, WorkerLLM } from '../dist/browser.js';

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

/** @type {LLM | WorkerLLM | null} */
let llm = null;
/** Aborts the running generation. */
let abortController = null;
/** The conversation so far (chat view). */
const messages = [];

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function setBusy(busy) {
  for (const id of ['load', 'generate', 'send']) $(id).disabled = busy;
  for (const id of ['stop', 'chat-stop']) $(id).disabled = !busy || !abortController;
}

async function showAdapter() {
  const adapter = await navigator.gpu?.requestAdapter();
  const info = adapter?.info;
  $('adapter').textContent = adapter ? `WebGPU: ${[info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'available'}` : 'WebGPU is not available in this browser.';
}

async function load() {
  const model = $('model').value.trim() || undefined;
  setBusy(true);
  abortController = null;
  const files = new Map();
  const bar = $('progress');
  bar.hidden = true;
  try {
    if (llm) await llm.dispose();
    llm = null;
    setStatus(`Loading ${model ?? 'the embedded tinystories-656K'}…`);
    const t0 = performance.now();
    const inWorker = $('worker').checked;
    llm = await (inWorker ? WorkerLLM : LLM).create({
      model,
      hfEndpoint: $('endpoint').value.trim() || undefined,
      revision: $('revision').value.trim() || undefined,
      hfToken: $('token').value.trim() || undefined,
      onProgress: ({ phase = 'download', file, loadedBytes, totalBytes }) => {
        files.set(`${phase}:${file}`, { loadedBytes, totalBytes });
        let loaded = 0;
        let total = 0;
        for (const f of files.values()) {
          loaded += f.loadedBytes;
          total += f.totalBytes;
        }
        bar.hidden = false;
        bar.value = total ? loaded / total : 0;
        setStatus(`Downloading ${file}: ${(loadedBytes / 1e6).toFixed(1)} / ${(totalBytes / 1e6).toFixed(1)} MB`);
      },
    });
    const secs = (performance.now() - t0) / 1000;
    const cfg = llm.engine.config;
    const chat = llm instanceof WorkerLLM ? llm.hasChatTemplate : Boolean(llm.engine.tokenizer.chatTemplate);
    const where = inWorker ? ' (engine in a Web Worker)' : '';
    setStatus(`Loaded ${model ?? 'tinystories-656K (embedded)'}${where}: ${cfg.modelType}, ${cfg.numLayers} layers, vocabulary ${cfg.vocabSize}, in ${secs.toFixed(1)} s.${chat ? ' It has a chat template: chat view.' : ''}`);
    $('complete-view').hidden = chat;
    $('chat-view').hidden = !chat;
    messages.length = 0;
    $('messages').replaceChildren();
    bar.hidden = true;
  } catch (e) {
    setStatus(`Could not load the model: ${e.message}`, true);
  } finally {
    setBusy(false);
  }
}

/** Streams the request `start(signal)` adds into `onText`; returns the token count. Stats update as tokens arrive. */
async function stream(start, onText) {
  abortController = new AbortController();
  setBusy(true);
  $('stats').textContent = 'Generating…';
  const t0 = performance.now();
  let first = 0;
  let tokens = 0;
  try {
    for await (const out of start(abortController.signal)) {
      const o = out.outputs[0];
      if (tokens === 0) first = performance.now();
      tokens += o.tokenIds.length;
      onText(o.text);
      const secs = (performance.now() - first) / 1000;
      const rate = tokens > 1 && secs > 0 ? ((tokens - 1) / secs).toFixed(1) : '–';
      $('stats').textContent = `${tokens} tokens · ${rate} tokens/s · first token after ${((first - t0) / 1000).toFixed(2)} s${o.finishReason ? ` · finished: ${o.finishReason}` : ''}`;
    }
  } catch (e) {
    if (e?.name !== 'AbortError') setStatus(`Generation failed: ${e.message}`, true);
  } finally {
    abortController = null;
    setBusy(false);
  }
  return tokens;
}

function samplingParams(maxTokens, temperature) {
  return llm.getDefaultSamplingParams().clone({ maxTokens, temperature, outputKind: 'delta' });
}

async function complete() {
  if (!llm) return;
  const prompt = $('prompt').value;
  $('output-prompt').textContent = prompt;
  $('output-text').textContent = '';
  const params = samplingParams(Number($('max-tokens').value) || 200, Number($('temperature').value) || 0);
  await stream((signal) => llm.engine.addRequest({ prompt, params, signal }), (text) => {
    $('output-text').textContent += text;
  });
}

function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  $('messages').append(div);
  return div;
}

async function chat() {
  const input = $('chat-input');
  const content = input.value.trim();
  if (!llm || !content) return;
  input.value = '';
  messages.push({ role: 'user', content });
  addMessage('user', content);
  const bubble = addMessage('assistant', '');
  // The template renders the whole conversation; the reply streams like any completion.
  const params = samplingParams(Number($('max-tokens').value) || 200, 0.7);
  const start = (signal) => {
    if (llm instanceof WorkerLLM) return llm.engine.addChatRequest({ messages: [...messages], params, signal });
    const { prompt, promptTokenIds } = applyChatTemplate(llm.engine.tokenizer, messages, { addGenerationPrompt: true });
    return llm.engine.addRequest({ prompt: { prompt, promptTokenIds }, params, signal });
  };
  let reply = '';
  await stream(start, (text) => {
    reply += text;
    bubble.textContent = reply;
  });
  messages.push({ role: 'assistant', content: reply });
}

$('load-form').addEventListener('submit', (e) => {
  e.preventDefault();
  load();
});
$('complete-form').addEventListener('submit', (e) => {
  e.preventDefault();
  complete();
});
$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  chat();
});
for (const id of ['stop', 'chat-stop']) $(id).addEventListener('click', () => abortController?.abort());

$('model').value = query.get('model') ?? '';
$('worker').checked = query.get('worker') !== '0';
showAdapter();
load();
