/** `webgpu-llm demo`: serves the package's demo page beside its browser build and embedded model. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../index.js';
import { startStaticServer } from '../static-server.js';
import { parseCommand, type CommandSpec } from './args.js';

export const DEMO: CommandSpec = {
  name: 'demo',
  usage: '[--host 127.0.0.1] [--port 8080]',
  summary:
    'Serves the browser demo (demo/, the browser build in dist/ and the embedded model) over HTTP; open the printed URL in a browser with WebGPU (Chrome, Edge; Safari 26; Firefox 141 on Windows). The model runs in the page, not in this process.',
  flags: [
    { name: 'host', kind: 'string', metavar: 'HOST', help: "address to listen on: 127.0.0.1 answers this machine only; 0.0.0.0 every network interface", defaultText: '127.0.0.1' },
    { name: 'port', kind: 'int', min: 0, max: 65535, help: 'TCP port (0: any free port)', defaultText: '8080' },
  ],
};

export async function demoCommand(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(DEMO, argv);
  const root = packageRoot();
  if (!existsSync(join(root, 'dist/browser.js'))) throw new Error(`no browser build at ${join(root, 'dist/browser.js')}: run npm run build`);
  const mounts = { '/demo/': join(root, 'demo'), '/dist/': join(root, 'dist'), '/models/': join(root, 'models') };
  const { url } = await startStaticServer(mounts, (v.port as number | undefined) ?? 8080, (v.host as string | undefined) ?? '127.0.0.1', '/demo/');
  process.stderr.write(`webgpu-llm demo: open ${url}demo/ in a browser with WebGPU (Ctrl-C stops)\n`);
  await new Promise(() => {}); // serve until interrupted
}
