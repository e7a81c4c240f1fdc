// Asset imports resolved by the bundler (tsup's esbuild loaders, vitest's plugin in vitest.config.ts).
declare module '*.wgsl' {
  /** WGSL source text. */
  const source: string;
  export default source;
}
declare module '*.wasm' {
  /** The module's bytes, embedded in the bundle. */
  const bytes: Uint8Array;
  export default bytes;
}
