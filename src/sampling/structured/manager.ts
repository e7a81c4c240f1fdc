/**
 * Structured outputs for one model (vLLM V1's StructuredOutputManager with its xgrammar backend): the tokenizer's
 * vocabulary given to xgrammar once, grammars compiled once per constraint (cached by key, the compile shared by
 * every request that asks while it runs), and one matcher per sequence.
 *
 * Per step, a constrained sequence's matcher gives a bitmask of the tokens the grammar allows next (bit t of word
 * t >> 5 set = allowed; xgrammar's layout); the sampler sets the others to -inf before anything else sees the row.
 * The engine's EOS ids are xgrammar's stop tokens, allowed exactly when the grammar accepts the text so far. Special
 * tokens (added tokens marked special) are never allowed: they carry no text a grammar could match.
 *
 * @example
 *   const so = new StructuredOutputManager(tokenizer, config.vocabSize, eosTokenIds);
 *   const g = await so.grammar(structuredSpec({ json: schema }));   // InvalidArgumentError on a bad schema
 *   const mask = await g.bitmask(); sample; g.accept([tokenId]);
 */
import { InvalidArgumentError } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/index.js';
import { choiceGrammar, type StructuredSpec } from './params.js';
import { captureErrors, GrammarError, loadXGrammar, type XGrammarModule } from './xgrammar.js';

import type { CompiledGrammar, GrammarCompiler, GrammarMatcher } from '@mlc-ai/web-xgrammar';

/** Compiled grammars kept (vLLM caches them too; a compile costs 0.1-0.5 s for a 150k vocabulary on a CPU core). */
const MAX_CACHED = 64;

/** xgrammar's name for how token strings encode bytes, read off the tokenizer's decoder. */
export function vocabType(tokenizer: Tokenizer): 'byte_level' | 'byte_fallback' | 'raw' {
  if (tokenizer.convertTokensToString(['Ġ']) === ' ') return 'byte_level';
  if (tokenizer.convertTokensToString(['<0x41>']) === 'A') return 'byte_fallback';
  return 'raw';
}

/** One sequence's grammar state. */
export class SequenceGrammar {
  private done = false;
  /** bitmask() calls in flight: the matcher is freed only after the last (a step may still ask after a stop). */
  private busy = 0;
  constructor(
    private readonly matcher: GrammarMatcher,
    /** The constraint's kind (errors, tests). */
    readonly kind: StructuredSpec['kind'],
  ) {}

  /**
   * The tokens allowed next: Int32Array [ceil(V / 32)], bit t % 32 of word t >> 5 set = allowed. Null once the
   * grammar has ended (its stop token accepted) or the sequence is gone: nothing is constrained any more.
   */
  async bitmask(): Promise<Int32Array | null> {
    if (this.done || this.matcher.isTerminated()) return null;
    this.busy++;
    try {
      return await this.matcher.getNextTokenBitmask();
    } finally {
      if (--this.busy === 0 && this.done) this.matcher.dispose();
    }
  }

  /** Advances over sampled tokens; false if the grammar refused one (the state then stays before it). */
  accept(tokenIds: readonly number[]): boolean {
    for (const t of tokenIds) {
      if (this.done || this.matcher.isTerminated()) return true;
      if (!this.matcher.acceptToken(t)) return false;
    }
    return true;
  }

  /** Whether the grammar has accepted a stop token. */
  get terminated(): boolean {
    return !this.done && this.matcher.isTerminated();
  }

  /** Frees the matcher (once no bitmask() call is in flight). */
  dispose(): void {
    if (this.done) return;
    this.done = true;
    if (this.busy === 0) this.matcher.dispose();
  }
}

export class StructuredOutputManager {
  private compiler: Promise<{ xg: XGrammarModule; compiler: GrammarCompiler }> | null = null;
  /** key -> compile (promise: concurrent requests for one key share it), least recently used first. */
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();
  /** Compiles run so far (tests, metrics). */
  compiles = 0;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Logits per row (config.vocab_size; may exceed the tokenizer's). */
    private readonly vocabSize: number,
    private readonly stopTokenIds: readonly number[],
  ) {}

  /** xgrammar's view of the vocabulary and its compiler, built on first use (0.2-0.7 s for a 150k vocabulary). */
  private setup() {
    this.compiler ??= (async () => {
      const xg = await loadXGrammar();
      const tok = this.tokenizer;
      const stops = new Set(this.stopTokenIds);
      // Special tokens as '' (xgrammar: never allowed); stop tokens by id (allowed when the grammar accepts).
      const vocab = Array.from({ length: Math.min(tok.vocabSize, this.vocabSize) }, (_, id) =>
        tok.specialTokenIds.has(id) && !stops.has(id) ? '' : (tok.idToToken(id) ?? ''),
      );
      const info = await xg.TokenizerInfo.createTokenizerInfo(vocab, vocabType(tok), false, this.vocabSize, [...stops]);
      // xgrammar's own cache off: this class caches by key, and a compile that aborted (a bad schema) leaves
      // xgrammar's entry for it pending forever, so the next compile of the same schema would never return.
      return { xg, compiler: await xg.GrammarCompiler.createGrammarCompiler(info, false) };
    })();
    this.compiler.catch(() => (this.compiler = null));
    return this.compiler;
  }

  /** The compiled grammar of a constraint, from the cache or compiled now; InvalidArgumentError if xgrammar refuses it. */
  compile(spec: StructuredSpec): Promise<CompiledGrammar> {
    const hit = this.cache.get(spec.key);
    if (hit) {
      this.cache.delete(spec.key);
      this.cache.set(spec.key, hit);
      return hit;
    }
    const p = this.compileNow(spec);
    this.cache.set(spec.key, p);
    p.catch(() => this.cache.get(spec.key) === p && this.cache.delete(spec.key));
    while (this.cache.size > MAX_CACHED) {
      const [oldest, q] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      q.then((g) => g.dispose(), () => {});
    }
    return p;
  }

  /** A fresh matcher for one sequence. */
  async grammar(spec: StructuredSpec): Promise<SequenceGrammar> {
    const compiled = await this.compile(spec);
    const { xg } = await this.setup();
    return new SequenceGrammar(await xg.GrammarMatcher.createGrammarMatcher(compiled), spec.kind);
  }

  private async compileNow(spec: StructuredSpec): Promise<CompiledGrammar> {
    const { compiler } = await this.setup();
    this.compiles++;
    const ws = spec.anyWhitespace;
    try {
      return await captureErrors(`invalid ${spec.kind}`, () => {
        switch (spec.kind) {
          case 'json':
            // indent -1: no layout imposed; with anyWhitespace false, compact separators (vLLM's disable_any_whitespace).
            return compiler.compileJSONSchema(spec.spec, ws, -1, ws ? undefined : [',', ':'], true);
          case 'jsonObject':
            return ws ? compiler.compileBuiltinJSONGrammar() : compiler.compileJSONSchema('{"type": "object"}', false, -1, [',', ':'], true);
          case 'regex':
            return compiler.compileStructuralTag({ type: 'structural_tag', format: { type: 'regex', pattern: spec.spec } });
          case 'choice':
            return compiler.compileGrammar(choiceGrammar(JSON.parse(spec.spec) as string[]));
          case 'grammar':
            return compiler.compileGrammar(spec.spec);
          case 'structuralTag':
            return compileStructuralTag(compiler, JSON.parse(spec.spec) as Record<string, unknown>);
        }
      });
    } catch (e) {
      if (e instanceof GrammarError) throw new InvalidArgumentError('structuredOutputs', `structuredOutputs: ${e.message}`);
      throw e;
    }
  }
}

/** vLLM's two structural-tag forms: legacy `{structures: [{begin, schema, end}], triggers}`, or xgrammar's own. */
function compileStructuralTag(compiler: GrammarCompiler, tag: Record<string, unknown>): Promise<CompiledGrammar> {
  if (Array.isArray(tag.structures)) {
    const items = (tag.structures as { begin?: unknown; schema?: unknown; end?: unknown }[]).map((s, i) => {
      if (typeof s?.begin !== 'string' || typeof s.end !== 'string' || s.schema === undefined) {
        throw new GrammarError(`structures[${i}] needs begin, schema and end`);
      }
      return { begin: s.begin, schema: typeof s.schema === 'string' ? s.schema : JSON.stringify(s.schema), end: s.end };
    });
    const triggers = tag.triggers;
    if (!Array.isArray(triggers) || !triggers.every((t) => typeof t === 'string')) throw new GrammarError('triggers must be a list of strings');
    return compiler.compileStructuralTag(items as never, triggers);
  }
  return compiler.compileStructuralTag(tag as never);
}
