/**
 * What tokenizer_config.json (and special_tokens_map.json) add to tokenizer.json, following transformers v5
 * (`TokenizersBackend`):
 *   - named special tokens (bos_token, eos_token, ...), from the config, else from special_tokens_map.json;
 *   - special tokens the config names but tokenizer.json lacks are added (special, normalized: false);
 *   - an explicit `add_bos_token`/`add_eos_token` (or a missing post_processor) replaces the post-processor with
 *     `[bos] $A [eos]` as those flags say (`update_post_processor`); otherwise tokenizer.json's one governs;
 *   - `clean_up_tokenization_spaces` is ignored for BPE unless the config insists
 *     (`clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output`).
 */
import type { AddedToken } from './added-tokens';
import { isObject, type Json } from './json';

/** The named special tokens of transformers' `SPECIAL_TOKENS_ATTRIBUTES`, in its order. */
export const SPECIAL_TOKEN_NAMES = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;

export type SpecialTokenName = (typeof SPECIAL_TOKEN_NAMES)[number];

/** An AddedToken-like config value: a string or `{content, lstrip, ...}`. */
function tokenEntry(v: unknown): { content: string; flags: Partial<AddedToken> } | null {
  if (typeof v === 'string') return { content: v, flags: {} };
  if (isObject(v) && typeof v.content === 'string') {
    const flags: Partial<AddedToken> = {};
    if (typeof v.lstrip === 'boolean') flags.lstrip = v.lstrip;
    if (typeof v.rstrip === 'boolean') flags.rstrip = v.rstrip;
    if (typeof v.single_word === 'boolean') flags.singleWord = v.single_word;
    if (typeof v.normalized === 'boolean') flags.normalized = v.normalized;
    return { content: v.content, flags };
  }
  return null;
}

export interface SpecialTokensConfig {
  named: Partial<Record<SpecialTokenName, string>>;
  /** Named, additional and extra special tokens, with any flags the config gives them. */
  declared: { content: string; flags: Partial<AddedToken> }[];
}

export function specialTokensOf(config: Json, map: Json): SpecialTokensConfig {
  const named: Partial<Record<SpecialTokenName, string>> = {};
  const declared: SpecialTokensConfig['declared'] = [];
  for (const name of SPECIAL_TOKEN_NAMES) {
    const e = tokenEntry(name in config ? config[name] : map[name]);
    if (e) {
      named[name] = e.content;
      declared.push(e);
    }
  }
  for (const key of ['additional_special_tokens', 'extra_special_tokens']) {
    const v = key in config ? config[key] : map[key];
    const list = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : [];
    for (const item of list) {
      const e = tokenEntry(item);
      if (e) declared.push(e);
    }
  }
  return { named, declared };
}

/** The `[bos] $A [eos]` items v5 builds, or null when tokenizer.json's post-processor stays. */
export function bosEosTemplate(
  config: Json,
  hasPostProcessor: boolean,
  idOf: (token: string | undefined) => number | undefined,
  named: SpecialTokensConfig['named'],
): (number | 'A')[] | null {
  const explicit = 'add_bos_token' in config || 'add_eos_token' in config;
  if (!explicit && hasPostProcessor) return null;
  const bos = config.add_bos_token === true ? idOf(named.bos_token) : undefined;
  const eos = config.add_eos_token === true ? idOf(named.eos_token) : undefined;
  return [...(bos === undefined ? [] : [bos]), 'A' as const, ...(eos === undefined ? [] : [eos])];
}

export function cleanUpSpaces(config: Json): boolean {
  return (
    config.clean_up_tokenization_spaces === true &&
    config.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output === true
  );
}

export type ChatTemplate = string | { name: string; template: string }[] | null;

/** tokenizer_config's chat_template: a string, or named templates (`[{name, template}]`). */
export function chatTemplateOf(config: Json): ChatTemplate {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    return t.filter(
      (x): x is { name: string; template: string } =>
        isObject(x) && typeof x.name === 'string' && typeof x.template === 'string',
    );
  }
  return null;
}
