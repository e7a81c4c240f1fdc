/** Builds a tokenizer's pipeline from tokenizer.json plus tokenizer_config.json and special_tokens_map.json. */
import { ModelFileError } from '../errors';
import { loadCore } from '../wasm/core';
import { type AddedToken, AddedVocabulary } from './added-tokens';
import { BpeModel } from './bpe-model';
import { bosEosTemplate, chatTemplateOf, cleanUpSpaces, type ChatTemplate, specialTokensOf, type SpecialTokensConfig } from './config';
import { buildDecoder, type Decoder } from './decoders';
import { child, expectArray, expectObject, fail, isObject, type Json, type JsonAt } from './json';
import { buildNormalizer, type Normalizer } from './normalizers';
import { buildPostProcessor, type PostProcessor, templateOf } from './post-processors';
import { buildPreTokenizer, type PreTokenizer } from './pre-tokenizers';

/** Everything a Tokenizer holds: the pipeline stages in data-flow order, then the config-derived facts. */
export interface TokenizerParts {
  added: AddedVocabulary;
  normalizer: Normalizer | null;
  preTokenizer: PreTokenizer | null;
  /** Pre-tokenized pieces are read as byte-level symbols by the model. */
  byteLevel: boolean;
  model: BpeModel;
  postProcessor: PostProcessor | null;
  decoder: Decoder | null;
  /** id -> added token (they take precedence over the model's vocabulary, as upstream). */
  addedById: Map<number, AddedToken>;
  addedByContent: Map<string, AddedToken>;
  /**
   * id -> token string of each added token. As in `tokenizers`, a token with `normalized: true` is known by its
   * normalized content: under TinyStories-656K's Prepend("▁") normalizer, id 0 is "▁<unk>" and decodes to " <unk>".
   */
  addedStrings: Map<number, string>;
  /**
   * Token strings that skip_special_tokens drops: the raw contents of special tokens. A normalized special token
   * whose string the normalizer changed is therefore not dropped, as upstream (`<|start_story|>` stays).
   */
  skippedOnDecode: Set<string>;
  specials: SpecialTokensConfig;
  cleanUpSpaces: boolean;
  chatTemplate: ChatTemplate;
  config: Json;
}

/** Parses `tokenizerJson` when given as text; `file` names it in errors. */
export async function loadParts(tokenizerJson: unknown, config: Json, specialTokensMap: Json, file: string): Promise<TokenizerParts> {
  if (typeof tokenizerJson === 'string') {
    try {
      tokenizerJson = JSON.parse(tokenizerJson);
    } catch (e) {
      throw new ModelFileError(file, `not valid JSON (${(e as Error).message})`);
    }
  }
  const root: JsonAt = { file, path: '' };
  const json = expectObject(tokenizerJson, root);
  const modelAt = child(root, 'model');
  const modelObj = expectObject(json.model, modelAt);
  const type = modelObj.type ?? ('merges' in modelObj ? 'BPE' : undefined);
  if (type !== 'BPE') fail(modelAt, `unsupported model type ${JSON.stringify(type)} (only BPE is implemented)`);
  if (modelObj.vocab === undefined || modelObj.vocab === null) fail(modelAt, 'the vocab is missing');

  // Everything that can reject the file first, so a failure leaves no wasm tables behind.
  const core = await loadCore();
  const normalizer = buildNormalizer(json.normalizer, child(root, 'normalizer'));
  const pre = buildPreTokenizer(json.pre_tokenizer, child(root, 'pre_tokenizer'));
  const decoder = buildDecoder(json.decoder, child(root, 'decoder'), core);
  let postProcessor = buildPostProcessor(json.post_processor, child(root, 'post_processor'));
  const fileAdded = addedTokensOf(json.added_tokens, child(root, 'added_tokens'));
  const model = BpeModel.load(core, modelObj, modelAt);
  try {
    return assembleParts(json, config, specialTokensMap, model, { normalizer, pre, decoder, postProcessor, fileAdded });
  } catch (err) {
    model.dispose(); // what follows the model's tables can still fail (added tokens, special tokens): give them back
    throw err;
  }
}

/** The parts around a loaded BPE model: added and special tokens, post-processor, template, decode sets. */
function assembleParts(
  json: Json,
  config: Json,
  specialTokensMap: Json,
  model: BpeModel,
  built: { normalizer: TokenizerParts['normalizer']; pre: ReturnType<typeof buildPreTokenizer>; decoder: TokenizerParts['decoder']; postProcessor: TokenizerParts['postProcessor']; fileAdded: ReturnType<typeof addedTokensOf> },
): TokenizerParts {
  const { normalizer, pre, decoder, fileAdded } = built;
  let { postProcessor } = built;
  const added = new AddedTokens(model);
  for (const t of fileAdded) added.add(t);
  const specials = specialTokensOf(config, specialTokensMap);
  // v5 adds the special tokens the config declares and tokenizer.json lacks.
  for (const { content, flags } of specials.declared) {
    if (!added.byContent.has(content)) {
      added.add({ content, special: true, singleWord: false, lstrip: false, rstrip: false, normalized: false, ...flags });
    }
  }
  const addedList = [...added.byContent.values()];
  const addedById = new Map(addedList.map((t) => [t.id, t]));
  const addedByContent = added.byContent;
  const idOf = (token: string | undefined) =>
    token === undefined ? undefined : (addedByContent.get(token)?.id ?? model.tokenToId(token));
  const template = bosEosTemplate(config, json.post_processor != null, idOf, specials.named);
  if (template) postProcessor = templateOf(template);

  const addedStrings = new Map(addedList.map((t) => [t.id, t.normalized && normalizer ? normalizer(t.content) : t.content]));
  const skippedOnDecode = new Set(addedList.filter((t) => t.special).map((t) => t.content));
  const splitSpecial = config.split_special_tokens === true;
  return {
    added: new AddedVocabulary(addedList, normalizer, splitSpecial),
    normalizer,
    preTokenizer: pre.run,
    byteLevel: pre.byteLevel,
    model,
    postProcessor,
    decoder,
    addedById,
    addedByContent,
    addedStrings,
    skippedOnDecode,
    specials,
    cleanUpSpaces: cleanUpSpaces(config),
    chatTemplate: chatTemplateOf(config),
    config,
  };
}

/**
 * `AddedVocabulary::add_tokens`: a token keeps its vocabulary id; a new one gets the next id after the
 * vocabulary and the added tokens so far. (tokenizer.json's `id` is not what decides: upstream only warns when
 * it differs. In well-formed files the two agree.)
 */
class AddedTokens {
  readonly byContent = new Map<string, AddedToken>();
  private maxId = -1;

  constructor(private readonly model: BpeModel) {}

  add(t: Omit<AddedToken, 'id'>): void {
    if (t.content.length === 0 || this.byContent.has(t.content)) return;
    const size = this.model.size;
    const id =
      this.model.tokenToId(t.content) ?? (this.maxId < 0 ? size : this.maxId >= size || size === 0 ? this.maxId + 1 : size);
    this.maxId = Math.max(this.maxId, id);
    this.byContent.set(t.content, { ...t, id });
  }
}

/** tokenizer.json's added_tokens, in id order. */
function addedTokensOf(v: unknown, at: JsonAt): Omit<AddedToken, 'id'>[] {
  if (v === undefined || v === null) return [];
  const list = expectArray(v, at).map((item, i) => {
    const a = child(at, i);
    const t = expectObject(item, a);
    if (typeof t.id !== 'number' || !Number.isInteger(t.id) || t.id < 0) fail(child(a, 'id'), 'expected a token id');
    if (typeof t.content !== 'string') fail(child(a, 'content'), 'expected a string');
    const special = t.special === true;
    return {
      fileId: t.id,
      content: t.content,
      special,
      singleWord: t.single_word === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      normalized: typeof t.normalized === 'boolean' ? t.normalized : !special,
    };
  });
  return list.sort((x, y) => x.fileId - y.fileId).map(({ fileId: _, ...t }) => t);
}

/** A config object or nothing; anything else is a malformed file. */
export function configObject(v: unknown, file: string): Json {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new ModelFileError(file, 'expected a JSON object');
  return v;
}
