/**
 * GPT-2's byte <-> char table: every byte gets a printable char so byte-level vocabularies are plain strings.
 * Bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 map, in
 * byte order, to U+0100.. U+0143 (so the space 0x20 is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
 */

/** BYTE_TO_CHAR[b]: the char standing for byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** CHAR_TO_BYTE[code point]: the byte a byte-level char stands for, -1 for other chars; length 0x144. */
export const CHAR_TO_BYTE: Int16Array = buildCharToByte();

function buildByteToChar(): string[] {
  const chars: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return chars;
}

function buildCharToByte(): Int16Array {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((ch, b) => (table[ch.charCodeAt(0)] = b));
  return table;
}

const utf8 = new TextEncoder();

/** The byte-level form of a string: its UTF-8 bytes as chars ("é" -> "Ã©", " a" -> "Ġa"). */
export function toByteLevel(s: string): string {
  let out = '';
  for (const b of utf8.encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}
