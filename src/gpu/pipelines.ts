/**
 * Kernels and their caches: compute pipelines keyed by shader variant + override constants, bind group layouts
 * keyed by binding kinds, bind groups keyed by the buffer ranges they bind.
 *
 * Every kernel binds `@group(0) @binding(0)` to a uniform params struct at a dynamic offset in the recorder's
 * uniform ring (one slot per dispatch, one `writeBuffer` per step), then its tensors at bindings 1.. . Because the
 * params live at a dynamic offset, a bind group depends only on which buffers are bound, so it is created once and
 * reused by every step.
 */

/** How a kernel uses a storage binding. `read` bindings are declared `var<storage, read>` in WGSL. */
export type BindingKind = 'read' | 'write';

/** The WGSL type of a uniform params field (all 4 bytes, so fields sit in consecutive words). */
export type ParamType = 'u32' | 'i32' | 'f32';
export type ParamFields = Readonly<Record<string, ParamType>>;
/** A dispatch's params by field name. */
export type ParamValues<F extends ParamFields> = { readonly [K in keyof F]: number };

const TYPE_CODES: Record<ParamType, number> = { u32: 0, i32: 1, f32: 2 };

/**
 * A kernel's uniform params struct, declared once in TS: the WGSL `struct Params` (prepended to the kernel's code,
 * which binds it as `@group(0) @binding(0) var<uniform> p: Params;`) and the writer of a dispatch's named values
 * into uniform words both come from it, so the two cannot disagree. Field i is word i, in declaration order.
 */
export class ParamsStruct<F extends ParamFields = ParamFields> {
  readonly names: readonly (keyof F & string)[];
  /** Per field (word): 0 = u32, 1 = i32, 2 = f32. */
  readonly types: Uint8Array;
  /** Byte size, padded to 16 as uniform buffers require. */
  readonly size: number;
  /** `struct Params { ... }` in WGSL. */
  readonly wgsl: string;

  constructor(readonly fields: F) {
    this.names = Object.keys(fields);
    if (this.names.length === 0) throw new Error('paramsStruct: a params struct needs at least one field');
    this.types = Uint8Array.from(this.names, (n) => {
      const code = TYPE_CODES[fields[n]];
      if (code === undefined) throw new Error(`paramsStruct: field ${n} has type '${fields[n]}', not u32, i32 or f32`);
      return code;
    });
    this.size = Math.max(16, Math.ceil((this.names.length * 4) / 16) * 16);
    const body = this.names.map((n) => `  ${n}: ${fields[n]},\n`).join('');
    this.wgsl = `struct Params {\n${body}}\n`;
  }

  /** Writes `values` into the words at `base` of a uniform mirror (its u32, i32 and f32 views of one buffer). */
  write(u32: Uint32Array, i32: Int32Array, f32: Float32Array, base: number, values: ParamValues<F>): void {
    const { names, types } = this;
    for (let i = 0; i < names.length; i++) {
      const v = values[names[i]];
      if (v === undefined) throw new Error(`params: no value for field ${names[i]}`);
      const t = types[i];
      if (t === 0) u32[base + i] = v;
      else if (t === 1) i32[base + i] = v;
      else f32[base + i] = v;
    }
  }
}

/**
 * Declares a params struct.
 *
 * @example
 * const NORM_PARAMS = paramsStruct({ rows: 'u32', H: 'u32', eps: 'f32' });
 * // The kernel's WGSL gets struct Params { rows: u32, H: u32, eps: f32 }; a dispatch passes { rows, H, eps }.
 */
export const paramsStruct = <F extends ParamFields>(fields: F): ParamsStruct<F> => new ParamsStruct(fields);

/** What a kernel variant is made of; `key` in {@link PipelineCache.kernel} must identify it uniquely. */
export interface KernelSource<F extends ParamFields = ParamFields> {
  /** Shader name for labels, e.g. `linear.gemv`. */
  name: string;
  /** WGSL source text (a file from `shaders/`), without its params struct (that comes from `params`). */
  code: string;
  /** Text prepended to `code`: `enable` directives and aliases/consts for element type and vector width only. */
  prelude?: string;
  /** Kinds of the storage bindings 1..n (binding 0 is always the uniform params). */
  bindings: readonly BindingKind[];
  /** The uniform params struct (binding 0, `p` in WGSL). */
  params: ParamsStruct<F>;
  /** Values for the shader's `override` constants. */
  constants?: Record<string, number>;
}

/** One buffer range bound to a storage binding. */
export interface BufferBinding {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** A compiled kernel variant. Its pipelines are built on first use. */
export class Kernel<F extends ParamFields = ParamFields> {
  /** Pipelines by aliasing mask (see {@link variant}). */
  private readonly variants = new Map<number, { pipeline: GPUComputePipeline; layout: CachedLayout }>();

  constructor(
    private readonly cache: PipelineCache,
    readonly source: KernelSource<F>,
  ) {}

  get params(): ParamsStruct<F> {
    return this.source.params;
  }

  /** Byte size of the params struct, padded to 16 as uniform buffers require. */
  get paramsSize(): number {
    return this.source.params.size;
  }

  get bindings(): readonly BindingKind[] {
    return this.source.bindings;
  }

  /**
   * The pipeline and layout for a dispatch. Bit i of `aliased` marks storage binding i + 1 as a `read` binding
   * whose buffer is also bound for writing (tensors sharing one arena buffer). WebGPU forbids read-only and
   * writable storage use of one buffer in one dispatch, so such bindings are declared `read_write` in this variant
   * (in the WGSL and the layout); all other bindings keep `read`. The ranges must still not overlap (WebGPU
   * forbids overlapping writable bindings): in-place ops have kernels of their own that bind the tensor once.
   */
  variant(aliased: number): { pipeline: GPUComputePipeline; layout: CachedLayout } {
    let v = this.variants.get(aliased);
    if (!v) {
      v = this.build(aliased);
      this.variants.set(aliased, v);
    }
    return v;
  }

  private build(aliased: number) {
    const { device } = this.cache;
    this.cache.pipelinesBuilt++;
    const kinds = this.source.bindings.map((k, i): BindingKind => (aliased & (1 << i) ? 'write' : k));
    const layout = this.cache.layout(kinds);
    const { prelude, params } = this.source;
    let code = `${prelude ? `${prelude}\n` : ''}${params.wgsl}\n${this.source.code}`;
    if (aliased) {
      code = code.replace(/@binding\((\d+)\)(\s*)var<storage,\s*read>/g, (m, b: string, sp: string) =>
        aliased & (1 << (Number(b) - 1)) ? `@binding(${b})${sp}var<storage, read_write>` : m,
      );
    }
    const module = device.createShaderModule({ code, label: this.source.name });
    const pipeline = device.createComputePipeline({
      label: this.source.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout.layout] }),
      compute: { module, entryPoint: 'main', constants: this.source.constants },
    });
    return { pipeline, layout };
  }
}

/** A bind group layout shared by every kernel with the same binding kinds. */
export interface CachedLayout {
  id: number;
  layout: GPUBindGroupLayout;
}

// GPUShaderStage.COMPUTE
const COMPUTE = 0x4;
/** Bind groups kept before the cache is cleared (a run binds a fixed set of buffers, so this is rarely reached). */
const MAX_BIND_GROUPS = 8192;

/** Pipelines, layouts and bind groups of one device. */
export class PipelineCache {
  private readonly kernels = new Map<string, unknown>();
  private readonly layouts = new Map<string, CachedLayout>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  /** Compute pipelines built so far (each a shader compilation: ModelRunner.warmup front-loads them). */
  pipelinesBuilt = 0;

  constructor(readonly device: GPUDevice) {}

  /**
   * The kernel variant named `key`, built by `make` the first time only (so callers pay one Map lookup per
   * dispatch, not a string template per dispatch).
   */
  kernel<F extends ParamFields>(key: string, make: () => KernelSource<F>): Kernel<F> {
    // A key names one source, so the kernel under it has the params `make` declares.
    let k = this.kernels.get(key) as Kernel<F> | undefined;
    if (!k) {
      k = new Kernel(this, make());
      this.kernels.set(key, k);
    }
    return k;
  }

  layout(kinds: readonly BindingKind[]): CachedLayout {
    const key = kinds.join(',');
    let l = this.layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
      ];
      kinds.forEach((kind, i) => {
        const type = kind === 'read' ? 'read-only-storage' : 'storage';
        entries.push({ binding: i + 1, visibility: COMPUTE, buffer: { type } });
      });
      l = { id: this.nextId++, layout: this.device.createBindGroupLayout({ entries, label: key }) };
      this.layouts.set(key, l);
    }
    return l;
  }

  bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  /**
   * `|buffer:offset:size` of a binding, kept per binding object: ops reuse them (bindTensor, wholeBuffer), so the
   * per-dispatch key costs a lookup. Binding objects must not be mutated after use.
   */
  private bindingKey(b: BufferBinding): string {
    let key = this.bindingKeys.get(b);
    if (key === undefined) {
      key = `|${this.bufferId(b.buffer)}:${b.offset}:${b.size}`;
      this.bindingKeys.set(b, key);
    }
    return key;
  }

  private readonly bindingKeys = new WeakMap<BufferBinding, string>();

  /** The bind group for `layout` binding the uniform slot of `paramsSize` bytes of `uniforms`, then `bindings`. */
  bindGroup(layout: CachedLayout, uniforms: GPUBuffer, paramsSize: number, bindings: readonly BufferBinding[]): GPUBindGroup {
    let key = `${layout.id}|${this.bufferId(uniforms)}:${paramsSize}`;
    for (const b of bindings) key += this.bindingKey(b);
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniforms, offset: 0, size: paramsSize } }];
      bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset, size: b.size } }));
      group = this.device.createBindGroup({ layout: layout.layout, entries });
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** Bind groups cached now (steady across steps once a model's buffers are all bound). */
  get bindGroupCount(): number {
    return this.bindGroups.size;
  }

  /** Forgets cached bind groups (e.g. after freeing a model's buffers). */
  clearBindGroups(): void {
    this.bindGroups.clear();
  }
}
