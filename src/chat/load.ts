/**
 * `loadChatTemplate(pathOrString)`, as vLLM's `load_chat_template`: a file's text when the argument names a
 * readable file, else the argument itself when it looks like a template. The core reads no files by itself (no
 * `node:fs` here): the caller passes a reader, a ModelSource (a file of a model folder), or uses the Node entry's
 * version (bindings/node/chat-template.ts), which reads local files. URLs are fetched with the Web `fetch`.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ModelSource } from '../platform.js';

/** Reads a text file by path. */
export type TextReader = (path: string) => Promise<string>;

// vLLM's test: text with any of these characters is a template, not a path.
const looksLikeTemplate = (s: string) => /[{}\n]/.test(s);

/**
 * A chat template from a file path, a URL or the template text itself.
 *
 * @example
 * const template = await loadChatTemplate('{% for m in messages %}{{ m.content }}{% endfor %}'); // returned as is
 * const fromFile = await loadChatTemplate('template.jinja', (p) => fs.promises.readFile(p, 'utf8'));
 * const out = await llm.chat(messages, params, { chatTemplate: fromFile });
 */
export async function loadChatTemplate(pathOrString: string, reader?: TextReader | ModelSource): Promise<string> {
  if (typeof pathOrString !== 'string') throw new InvalidArgumentError('chatTemplate', 'chatTemplate must be a file path or the template text');
  // vLLM tries the file first and falls back to the text; a path with braces or a newline is rare enough that the
  // text test alone decides here, which spares a read (and, in a browser, a request) per template.
  if (looksLikeTemplate(pathOrString)) return pathOrString;
  const read: TextReader | undefined =
    typeof reader === 'function' ? reader : reader ? (p) => reader.readText(p) : /^https?:\/\//.test(pathOrString) ? fetchText : undefined;
  if (read === undefined) {
    throw new InvalidArgumentError(
      'chatTemplate',
      `'${pathOrString}' looks like a file path, but no reader was given to read it: pass a reader, or use the Node entry's loadChatTemplate`,
    );
  }
  try {
    return await read(pathOrString);
  } catch (e) {
    throw new InvalidArgumentError('chatTemplate', `the chat template '${pathOrString}' looks like a file path, but it could not be read: ${(e as Error).message}`);
  }
}

async function fetchText(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  return res.text();
}
