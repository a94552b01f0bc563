/**
 * Reads the header fields the native HTTP/2 stitcher decoded from HPACK
 * (HTTP2_PAYLOAD in native/src/core/ExchangeRecord.h): one field per line
 * ending "\r\n", in wire order, pseudo-header fields included:
 *   "name: value"  a field;
 *   "?name"        a field whose value refers to an HPACK dynamic-table
 *                  entry inserted before sonde saw the connection;
 *   "?"            the same, with the name unknown too.
 * A response payload holds the header fields, then, when the stream ended
 * with trailers, an empty line and the trailer fields.
 *
 * The bytes come from another process through the kernel, so nothing here
 * throws or trusts them: a line that breaks the format counts as a field of
 * which nothing is known, and a block that holds one can no longer say that
 * a field is absent, only that it is unknown.
 */

/** One decoded header field. */
export interface Http2Field {
  /** Lower-cased; undefined for a "?" line (or one that breaks the format). */
  name: string | undefined;
  /** undefined when the capture cannot tell it ("?name", "?"). */
  value: string | undefined;
}

/** The fields of one header block (HEADERS plus CONTINUATION frames). */
export interface FieldBlock {
  /** In wire order. */
  fields: Http2Field[];
  /**
   * True when every field of the block is known by name: the block was
   * captured (has at least one line) and holds no "?" line and no line
   * that breaks the format. Only then does a missing field mean "not sent".
   */
  complete: boolean;
}

export interface Http2Response {
  headers: FieldBlock;
  /** Present when the payload carries a trailer section (after an empty line). */
  trailers: FieldBlock | undefined;
}

/** A field's value the capture cannot tell: see {@link fieldValue}. */
export const UNKNOWN: unique symbol = Symbol('unknown');
export type Unknown = typeof UNKNOWN;

const CR = 13;
const SP = 32;
const COLON = 58;
const QUESTION = 63;

const EMPTY_BLOCK: FieldBlock = Object.freeze({ fields: Object.freeze([]) as unknown as Http2Field[], complete: false });

/** Parses the request's header block in `bytes[from, to)`. */
export function parseRequestFields(bytes: Buffer, from: number, to: number): FieldBlock {
  const text = latin1(bytes, from, to);
  if (text === '') return EMPTY_BLOCK;
  return parseBlock(text, 0, text.length).block;
}

/** Parses the response's header block, and trailers if any, in `bytes[from, to)`. */
export function parseResponseFields(bytes: Buffer, from: number, to: number): Http2Response {
  const text = latin1(bytes, from, to);
  if (text === '') return { headers: EMPTY_BLOCK, trailers: undefined };
  const head = parseBlock(text, 0, text.length);
  const trailers = head.next < 0 ? undefined : parseBlock(text, head.next, text.length).block;
  return { headers: head.block, trailers };
}

/**
 * Latin1 keeps every byte as one char, as the HTTP/1 describer reads its
 * heads: values from the wire are never replaced or merged, and a range
 * outside the buffer gives an empty string instead of a throw.
 */
function latin1(bytes: Buffer, from: number, to: number): string {
  const start = Math.max(0, from | 0);
  const end = Math.min(bytes.length, to | 0);
  return end > start ? bytes.toString('latin1', start, end) : '';
}

/**
 * The block from `start` up to an empty line or the end. `next` is where
 * the text after the empty line begins, -1 when there was none.
 */
function parseBlock(text: string, start: number, end: number): { block: FieldBlock; next: number } {
  const fields: Http2Field[] = [];
  let complete = true;
  let pos = start;
  while (pos < end) {
    const lf = text.indexOf('\n', pos);
    if (lf === -1 || lf >= end) {
      // An unterminated last line may be a cut value: nothing of it is trusted.
      fields.push({ name: undefined, value: undefined });
      complete = false;
      break;
    }
    const lineEnd = lf > pos && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    if (lineEnd === pos) return { block: { fields, complete: complete && fields.length > 0 }, next: lf + 1 };
    const field = parseLine(text, pos, lineEnd);
    if (field.name === undefined) complete = false;
    fields.push(field);
    pos = lf + 1;
  }
  return { block: { fields, complete: complete && fields.length > 0 }, next: -1 };
}

function parseLine(text: string, start: number, end: number): Http2Field {
  if (text.charCodeAt(start) === QUESTION) {
    return { name: start + 1 < end ? lowerCased(text.slice(start + 1, end)) : undefined, value: undefined };
  }
  // The name is never empty, and a pseudo-header's starts with ':', so the
  // separator is searched for after the first char.
  for (let i = start + 1; i + 1 < end; i++) {
    if (text.charCodeAt(i) === COLON && text.charCodeAt(i + 1) === SP) {
      return { name: lowerCased(text.slice(start, i)), value: text.slice(i + 2, end) };
    }
  }
  return { name: undefined, value: undefined };
}

/** HTTP/2 field names are lower-case on the wire (RFC 9113 §8.2.1); a peer that breaks that still matches. */
function lowerCased(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return name.toLowerCase();
  }
  return name;
}

/**
 * The value of the first field named `lowerName` in the block: a string when
 * known; {@link UNKNOWN} when its value is unknown, or when it is absent from
 * a block that is not {@link FieldBlock.complete} (it may be behind a "?"
 * line, or the block may be missing); undefined when the block says the
 * field was not sent.
 */
export function fieldValue(block: FieldBlock, lowerName: string): string | Unknown | undefined {
  const fields = block.fields;
  for (let i = 0; i < fields.length; i++) {
    if (fields[i].name === lowerName) return fields[i].value ?? UNKNOWN;
  }
  return block.complete ? undefined : UNKNOWN;
}

/** Host and port of an authority ("h:8080", "[::1]:443", "h"); the port is undefined when absent or invalid. */
export function splitAuthority(authority: string): { name: string; port: number | undefined } {
  // Userinfo is deprecated and has no place in :authority (RFC 9113 §8.3.1), yet never reaches an attribute.
  const at = authority.lastIndexOf('@');
  const host = at >= 0 ? authority.slice(at + 1) : authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return { name: host, port: undefined };
    return { name: host.slice(1, end), port: host[end + 1] === ':' ? validPort(host.slice(end + 2)) : undefined };
  }
  const colon = host.lastIndexOf(':');
  if (colon < 0 || host.indexOf(':') !== colon) return { name: host, port: undefined };
  return { name: host.slice(0, colon), port: validPort(host.slice(colon + 1)) };
}

function validPort(text: string): number | undefined {
  if (text === '' || text.length > 5) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const port = Number(text);
  return port > 0 && port < 65536 ? port : undefined;
}
