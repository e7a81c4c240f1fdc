/**
 * Post-processors of `tokenizers` (processors/*.rs), reduced to what ids need: the special tokens a template
 * puts around the sequence. ByteLevel's post-processor only fixes offsets, so it is the identity here.
 */
import { child, expectArray, expectObject, expectString, fail, type Json, type JsonAt, typeOf, unsupported } from './json';

/** Adds the template's special tokens around `ids` (a single sequence; pairs are not supported). */
export type PostProcessor = (ids: number[]) => number[];

export function buildPostProcessor(v: unknown, at: JsonAt): PostProcessor | null {
  if (v === null || v === undefined) return null;
  const obj = expectObject(v, at);
  switch (typeOf(obj, at)) {
    case 'Sequence': {
      const list = expectArray(obj.processors, child(at, 'processors'))
        .map((p, i) => buildPostProcessor(p, child(child(at, 'processors'), i)))
        .filter((p): p is PostProcessor => p !== null);
      return (ids) => list.reduce((acc, p) => p(acc), ids);
    }
    case 'ByteLevel':
      return null;
    case 'TemplateProcessing':
      return template(obj, at);
    case 'RobertaProcessing':
    case 'BertProcessing': {
      const cls = tokenPair(obj.cls, child(at, 'cls'));
      const sep = tokenPair(obj.sep, child(at, 'sep'));
      return (ids) => [cls, ...ids, sep];
    }
    default:
      return unsupported(obj, at, 'post_processor');
  }
}

/** A template from the ids of its special tokens, e.g. `[bos, 'A', eos]`. */
export function templateOf(items: (number | 'A')[]): PostProcessor {
  return (ids) => items.flatMap((it) => (it === 'A' ? ids : [it]));
}

function template(obj: Json, at: JsonAt): PostProcessor {
  const specials = expectObject(obj.special_tokens ?? {}, child(at, 'special_tokens'));
  const single = expectArray(obj.single, child(at, 'single'));
  const items: (number[] | 'A')[] = single.map((item, i) => {
    const a = child(child(at, 'single'), i);
    const it = expectObject(item, a);
    if (isObj(it.Sequence)) {
      if (it.Sequence.id !== 'A') fail(a, `a single-sequence template can only use sequence A`);
      return 'A';
    }
    if (isObj(it.SpecialToken)) {
      const name = expectString(it.SpecialToken.id, child(child(a, 'SpecialToken'), 'id'));
      const special = specials[name];
      if (!isObj(special)) fail(child(at, 'special_tokens'), `missing entry for ${JSON.stringify(name)}`);
      return expectArray(special.ids, child(child(child(at, 'special_tokens'), name), 'ids')).map((id) => {
        if (typeof id !== 'number') fail(child(child(at, 'special_tokens'), name), 'ids must be numbers');
        return id;
      });
    }
    return fail(a, 'expected {"Sequence": ...} or {"SpecialToken": ...}');
  });
  return (ids) => items.flatMap((it) => (it === 'A' ? ids : it));
}

function tokenPair(v: unknown, at: JsonAt): number {
  const pair = expectArray(v, at);
  if (typeof pair[1] !== 'number') fail(at, 'expected [token, id]');
  return pair[1];
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
