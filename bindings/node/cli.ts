#!/usr/bin/env node
/**
 * The `webgpu-llm` command (the package's bin): generate, chat, serve, bench, demo. The commands live in cli/
 * (main.ts dispatches; args.ts parses flags and writes --help from the same tables).
 *
 *   webgpu-llm generate "Once upon a time" --max-tokens 64
 *   webgpu-llm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000
 *   webgpu-llm --help | --version | COMMAND --help
 */
import { main, report } from './cli/main.js';

const argv = process.argv.slice(2);
main(argv).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(report(err, argv)),
);
