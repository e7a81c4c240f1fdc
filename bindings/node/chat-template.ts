/**
 * loadChatTemplate for Node: as the core's (src/chat/load.ts), reading a path from the local file system by default.
 *
 * @example
 * import { loadChatTemplate } from 'webgpu-llm/node';
 * const chatTemplate = await loadChatTemplate('./templates/chatml.jinja');
 * const out = await llm.chat([{ role: 'user', content: 'Hi' }], params, { chatTemplate });
 */
import { readFile } from 'node:fs/promises';
import { loadChatTemplate as loadWith, type TextReader } from '../../src/chat/load.js';
import type { ModelSource } from '../../src/platform.js';

/** The template text of a file path, URL, or the template text itself; `reader` overrides the local file read. */
export function loadChatTemplate(pathOrString: string, reader?: TextReader | ModelSource): Promise<string> {
  // URLs go to the core's fetch; everything else that looks like a path is a local file.
  const isUrl = typeof pathOrString === 'string' && /^https?:\/\//.test(pathOrString);
  return loadWith(pathOrString, reader ?? (isUrl ? undefined : (p: string) => readFile(p, 'utf8')));
}
