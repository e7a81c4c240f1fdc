// A Vercel edge function (edge-runtime): its assets arrive as the globals the test's `extend` sets
// (WebAssembly.Module objects and the model's files as ArrayBuffers), the handler as a fetch event listener.
import { edgeApp } from './edge-app.mjs';

const handle = edgeApp(globalThis.__EDGE_ASSETS__);
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
