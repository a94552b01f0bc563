/**
 * HTTP/1.x message-head parser for bytes captured by the kernel.
 *
 * The input is whatever the probe copied: the first N bytes of a message,
 * cut anywhere, or bytes of some other protocol entirely. Parsing therefore
 * never throws and never trusts the input; every failure is a typed reason.
 *
 * A longer capture of the same message never contradicts a shorter one:
 * "not-http" stays "not-http", and a complete start line keeps its fields and
 * the headers already read. Only a verdict that says it saw a cut start line
 * ("truncated-start-line", or a request with an empty `version`) may be
 * refined by more bytes: its target grows, or the complete line turns out
 * malformed.
 */

export interface HeaderField {
  /** Lower-cased field name. */
  name: string;
  /** Field value with surrounding SP/HTAB removed. */
  value: string;
}

export interface RequestHead {
  /** As on the wire, e.g. "GET"; any RFC 9110 token is accepted. */
  method: string;
  /**
   * request-target as on the wire: "/a?x=1", "http://h:1/p", "*" or
   * "host:443"; only its beginning when `targetTruncated`.
   */
  target: string;
  /**
   * True when the capture ends inside the request-target (a head larger than
   * the capture, typically a long query string): `target`, and `query` or
   * else `path`, hold only what was captured.
   */
  targetTruncated: boolean;
  /**
   * Path only: "/a" for origin form, the URL's path ("/" if empty) for absolute
   * form, "*" for asterisk form, and the authority itself ("host:443") for
   * CONNECT, whose target has no path.
   */
  path: string;
  /** Query without the leading '?'; undefined when the target has no '?'. */
  query: string | undefined;
  /**
   * "1.1" or "1.0"; "" when the capture ends inside the request line, which
   * then has no headers either.
   */
  version: string;
  /** Complete header lines only, in wire order. */
  headers: HeaderField[];
  /** True when the blank line ending the head was inside the captured bytes. */
  headersComplete: boolean;
  /** Offset just past the blank line when complete, else past the last complete line. */
  headBytes: number;
}

export interface ResponseHead {
  /** "1.1" or "1.0". */
  version: string;
  /** 100..999 */
  statusCode: number;
  /** reason-phrase as on the wire, possibly empty. */
  reason: string;
  headers: HeaderField[];
  headersComplete: boolean;
  headBytes: number;
}

/**
 * Why the bytes give no message head:
 * - `empty`: nothing, or nothing but line endings;
 * - `not-http`: another protocol, HTTP/0.9 or HTTP/2;
 * - `truncated-start-line`: the capture ends too early in the start line to
 *   tell (a request needs its method, SP and the first char of its target);
 * - `malformed-start-line`: HTTP/1, but a start line that breaks the grammar.
 */
export type ParseFailure = 'empty' | 'not-http' | 'truncated-start-line' | 'malformed-start-line';
export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: ParseFailure };

/** Header lines beyond this are still scanned (to find the end of the head) but not kept. */
export const MAX_HEADERS = 100;

/** Longest registered method is 17 chars; anything far longer is not an HTTP request. */
const MAX_METHOD_LENGTH = 32;

/** "HTTP/1.1" */
const VERSION_LENGTH = 8;

const HTAB = 9;
const LF = 10;
const CR = 13;
const SP = 32;
const SLASH = 47;
const COLON = 58;
const QUESTION = 63;
const HASH = 35;
const DIGIT_0 = 48;
const DIGIT_1 = 49;
const DIGIT_9 = 57;

type Failure = { ok: false; reason: ParseFailure };

// Shared and frozen: failures are frequent on garbage and need no allocation.
const EMPTY: Failure = Object.freeze({ ok: false, reason: 'empty' }) as Failure;
const NOT_HTTP: Failure = Object.freeze({ ok: false, reason: 'not-http' }) as Failure;
const TRUNCATED: Failure = Object.freeze({ ok: false, reason: 'truncated-start-line' }) as Failure;
const MALFORMED: Failure = Object.freeze({ ok: false, reason: 'malformed-start-line' }) as Failure;

/** tchar per RFC 9110 §5.6.2, indexed by char code < 128. */
const TCHAR: Uint8Array = (() => {
  const table = new Uint8Array(128);
  for (let c = 0x30; c <= 0x39; c++) table[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) table[c] = 1;
  for (const ch of "!#$%&'*+-.^_`|~") table[ch.charCodeAt(0)] = 1;
  return table;
})();

function isTchar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

function isDigit(c: number): boolean {
  return c >= DIGIT_0 && c <= DIGIT_9;
}

/**
 * Where the start line begins, after the empty lines RFC 9112 §2.2 tells
 * servers to ignore (left over from a previous message on a keep-alive
 * connection). Returns -1 when nothing but line endings was captured.
 */
function skipLeadingEmptyLines(buf: Buffer, from: number, n: number): number {
  let i = from;
  while (i < n) {
    const c = buf[i];
    if (c === LF) {
      i++;
    } else if (c === CR && (i + 1 === n || buf[i + 1] === LF)) {
      // A trailing lone CR is most likely the first half of a CRLF.
      i += i + 1 === n ? 1 : 2;
    } else {
      return i;
    }
  }
  return -1;
}

/** Offset just past the first empty line at or after `from`, or -1. */
function findHeadEnd(buf: Buffer, from: number, to: number): number {
  let pos = from;
  for (;;) {
    const lf = buf.indexOf(LF, pos);
    if (lf === -1 || lf >= to) return -1;
    if (lf === pos || (lf === pos + 1 && buf[pos] === CR)) return lf + 1;
    pos = lf + 1;
  }
}

interface Framed {
  /** latin1 text covering the start line and the rest of the head. */
  text: string;
  lineStart: number;
  /** End of the start line content, before any CR. */
  lineEnd: number;
  /** Offset of the first header line. */
  next: number;
}

/**
 * The verdict on a start line with no LF in `buf[start, end)`; `from` is
 * where the parsed range began, for offsets in the result.
 */
type CutLineParser<T> = (buf: Buffer, from: number, start: number, end: number) => ParseResult<T>;

/**
 * Locates the start line and decodes only the head: a captured body can be
 * far larger than the head and is never needed here.
 */
function frame<T>(bytes: Uint8Array, parseCutLine: CutLineParser<T>, from: number, to: number | undefined, startLineOnly = false): Framed | ParseResult<T> {
  if (bytes == null) return EMPTY;
  if (!(bytes instanceof Uint8Array)) return NOT_HTTP;
  const end = to === undefined || to > bytes.length ? bytes.length : to;
  if (end <= from) return EMPTY;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = skipLeadingEmptyLines(buf, from, end);
  if (start === -1) return EMPTY;
  let lf = buf.indexOf(LF, start);
  if (lf >= end) lf = -1;
  if (lf === -1) return parseCutLine(buf, from, start, end);
  // Without headers, the start line is all the text needed.
  const headEnd = startLineOnly ? lf + 1 : findHeadEnd(buf, lf + 1, end);
  // Offsets below are relative to `from`: the text starts there.
  const text = buf.toString('latin1', from, headEnd === -1 ? end : headEnd);
  const lineEnd = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
  return { text, lineStart: start - from, lineEnd: lineEnd - from, next: lf + 1 - from };
}

function isVerdict<T>(f: Framed | ParseResult<T>): f is ParseResult<T> {
  return (f as ParseResult<T>).ok !== undefined;
}

/** Enough of a cut start line to tell garbage from a method or "HTTP/". */
function cutLinePrefix(buf: Buffer, start: number, end: number): string {
  return buf.toString('latin1', start, Math.min(end, start + MAX_METHOD_LENGTH + 1));
}

/**
 * Index of the SP ending the method, -1 when this cannot be an HTTP method,
 * -2 when the text ends before the method does.
 */
function scanMethod(text: string, start: number, end: number): number {
  const limit = Math.min(end, start + MAX_METHOD_LENGTH + 1);
  let i = start;
  for (; i < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === SP) return i === start ? -1 : i;
    if (!isTchar(c)) return -1;
  }
  return i - start > MAX_METHOD_LENGTH ? -1 : -2;
}

/** Part of a request-target: obs-text (>= 0x80) is tolerated, some clients send raw UTF-8 paths. */
function isTargetChar(c: number): boolean {
  return c > SP && c !== 0x7f;
}

const VERSION_STEM = 'HTTP/1.';

/**
 * Whether `text` from `from` on can still grow into "HTTP/1.0" or "HTTP/1.1"
 * and the end of its line.
 */
function versionPrefixPlausible(text: string, from: number): boolean {
  const n = text.length - from;
  if (n > VERSION_LENGTH + 1) return false;
  for (let i = 0; i < n && i < VERSION_STEM.length; i++) {
    if (text.charCodeAt(from + i) !== VERSION_STEM.charCodeAt(i)) return false;
  }
  if (n >= VERSION_LENGTH) {
    const minor = text.charCodeAt(from + VERSION_LENGTH - 1);
    if (minor !== DIGIT_0 && minor !== DIGIT_1) return false;
  }
  return n <= VERSION_LENGTH || text.charCodeAt(from + VERSION_LENGTH) === CR;
}

/**
 * A request line the capture ends inside: a head larger than the capture,
 * typically a long query string. Once the method, its SP and the first char
 * of the target are in, the span has what it needs: method, the target's
 * beginning, and the response. A cut after a complete target is a request
 * too, version unknown. Anything shorter, or anything the complete line
 * cannot be (a control char in the target, a second SP not followed by the
 * start of "HTTP/1.x"), stays "truncated-start-line" for the complete line to
 * decide.
 *
 * "not-http" comes only from the method, which the complete line checks the
 * same way, so a longer capture never flips it.
 */
function parseCutRequestLine(buf: Buffer, from: number, start: number, end: number): ParseResult<RequestHead> {
  const prefix = cutLinePrefix(buf, start, end);
  const methodEnd = scanMethod(prefix, 0, prefix.length);
  if (methodEnd === -1) return NOT_HTTP;
  if (methodEnd === -2) return TRUNCATED;
  const line = buf.toString('latin1', start, end);
  const ts = methodEnd + 1;
  let te = ts;
  while (te < line.length && isTargetChar(line.charCodeAt(te))) te++;
  if (te === ts) return TRUNCATED;
  const targetTruncated = te === line.length;
  if (!targetTruncated && (line.charCodeAt(te) !== SP || !versionPrefixPlausible(line, te + 1))) return TRUNCATED;

  const method = line.slice(0, methodEnd);
  const target = line.slice(ts, te);
  const { path, query } = splitTarget(method, target);
  return {
    ok: true,
    value: { method, target, targetTruncated, path, query, version: '', headers: [], headersComplete: false, headBytes: start - from },
  };
}

const HTTP_NAME = 'HTTP/';

/**
 * Whether the available chars can begin an HTTP/1 status line. Only the
 * protocol name and major version decide "not HTTP"; everything later is
 * "malformed", so the verdict cannot change as more bytes arrive.
 */
function statusPrefixPlausible(text: string, start: number, end: number): boolean {
  const n = Math.min(end - start, HTTP_NAME.length);
  for (let i = 0; i < n; i++) {
    if (text.charCodeAt(start + i) !== HTTP_NAME.charCodeAt(i)) return false;
  }
  if (end - start > HTTP_NAME.length) {
    const major = text.charCodeAt(start + HTTP_NAME.length);
    if (isDigit(major) && major !== DIGIT_1) return false;
  }
  return true;
}

/**
 * A status line is short, so a cut one is only told apart from garbage; the
 * same check reruns on the complete line, so a longer capture never flips
 * "not-http".
 */
function parseCutStatusLine(buf: Buffer, _from: number, start: number, end: number): ParseResult<ResponseHead> {
  const prefix = cutLinePrefix(buf, start, end);
  return statusPrefixPlausible(prefix, 0, prefix.length) ? TRUNCATED : NOT_HTTP;
}

interface HeaderScan {
  headers: HeaderField[];
  complete: boolean;
  headBytes: number;
}

/**
 * The header fields of the head from `from` on. With `only` (lower-case
 * tokens), only fields of those names are kept: the same fields, in the same
 * order, as keeping all of them and then filtering.
 */
function parseHeaders(text: string, from: number, only?: readonly string[]): HeaderScan {
  if (only !== undefined) {
    const scan = parseNamedHeaders(text, from, only);
    if (scan !== undefined) return scan;
  }
  const headers: HeaderField[] = [];
  let valid = 0;
  let pos = from;
  for (;;) {
    const lf = text.indexOf('\n', pos);
    if (lf === -1) return { headers, complete: false, headBytes: pos };
    const end = lf > pos && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    if (end === pos) return { headers, complete: true, headBytes: lf + 1 };
    if (valid < MAX_HEADERS) {
      const colon = fieldNameEnd(text, pos, end);
      if (colon !== -1) {
        valid++;
        if (only === undefined || nameIsOneOf(text, pos, colon, only)) headers.push(fieldAt(text, pos, colon, end));
      }
    }
    pos = lf + 1;
  }
}

/**
 * parseHeaders for a few names, without checking the names of the other
 * fields: a line whose name is one of `only` (tokens) is valid whatever the
 * others are. Which fields fall past MAX_HEADERS does depend on the others'
 * validity, so a head of more field lines than that gives undefined, for
 * the full scan.
 */
function parseNamedHeaders(text: string, from: number, only: readonly string[]): HeaderScan | undefined {
  const headers: HeaderField[] = [];
  let pos = from;
  // The first colon at or after pos; one found in a later line serves until then.
  let colon = -1;
  for (let lines = 0; ; lines++) {
    const lf = text.indexOf('\n', pos);
    if (lf === -1) return { headers, complete: false, headBytes: pos };
    const end = lf > pos && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    if (end === pos) return { headers, complete: true, headBytes: lf + 1 };
    if (lines >= MAX_HEADERS) return undefined;
    if (colon !== -2 && colon < pos) colon = text.indexOf(':', pos);
    if (colon === -1) colon = -2; // none left in the text
    if (colon > pos && colon < end && nameIsOneOf(text, pos, colon, only)) headers.push(fieldAt(text, pos, colon, end));
    pos = lf + 1;
  }
}

/**
 * The colon ending a header line's name, or -1 when the line is unusable.
 * Lines starting with whitespace (obsolete line folding) fail the name check
 * and are dropped rather than merged: merging would change an already
 * reported value when a longer capture of the same message is parsed.
 */
function fieldNameEnd(text: string, start: number, end: number): number {
  let i = start;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === COLON) break;
    if (!isTchar(c)) return -1;
  }
  return i === start || i === end ? -1 : i;
}

function nameIsOneOf(text: string, start: number, colon: number, names: readonly string[]): boolean {
  const length = colon - start;
  for (const name of names) {
    if (name.length !== length) continue;
    let i = 0;
    while (i < length) {
      const c = text.charCodeAt(start + i);
      if ((c >= 0x41 && c <= 0x5a ? c + 32 : c) !== name.charCodeAt(i)) break;
      i++;
    }
    if (i === length) return true;
  }
  return false;
}

/** The field of a header line whose name ends at `colon`. */
function fieldAt(text: string, start: number, colon: number, end: number): HeaderField {
  let vs = colon + 1;
  let ve = end;
  while (vs < ve) {
    const c = text.charCodeAt(vs);
    if (c !== SP && c !== HTAB) break;
    vs++;
  }
  while (ve > vs) {
    const c = text.charCodeAt(ve - 1);
    if (c !== SP && c !== HTAB) break;
    ve--;
  }
  const name = text.slice(start, colon);
  let upper = false;
  for (let i = start; i < colon && !upper; i++) {
    const c = text.charCodeAt(i);
    upper = c >= 0x41 && c <= 0x5a;
  }
  return { name: upper ? name.toLowerCase() : name, value: text.slice(vs, ve) };
}

/** Index of the "//" after "scheme:", or -1 when target is not absolute-form. */
function absoluteAuthorityStart(target: string): number {
  const first = target.charCodeAt(0);
  if (!((first >= 0x41 && first <= 0x5a) || (first >= 0x61 && first <= 0x7a))) return -1;
  for (let i = 1; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === COLON) {
      return target.charCodeAt(i + 1) === SLASH && target.charCodeAt(i + 2) === SLASH ? i + 3 : -1;
    }
    const schemeChar =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e;
    if (!schemeChar) return -1;
  }
  return -1;
}

/**
 * Path and query of a request-target. On a cut target each is what the
 * capture holds of it: the path up to the cut when no '?' was reached, else
 * the whole path and the query up to the cut.
 */
function splitTarget(method: string, target: string): { path: string; query: string | undefined } {
  if (target.charCodeAt(0) === SLASH) return splitAtQuestion(target, 0);
  if (target === '*' || method === 'CONNECT') return { path: target, query: undefined };
  const authority = absoluteAuthorityStart(target);
  if (authority === -1) return splitAtQuestion(target, 0);
  let p = authority;
  let c = 0;
  for (; p < target.length; p++) {
    c = target.charCodeAt(p);
    if (c === SLASH || c === QUESTION || c === HASH) break;
  }
  if (p === target.length || c === HASH) return { path: '/', query: undefined };
  if (c === QUESTION) return { path: '/', query: target.slice(p + 1) };
  return splitAtQuestion(target, p);
}

function splitAtQuestion(target: string, pathStart: number): { path: string; query: string | undefined } {
  const q = target.indexOf('?', pathStart);
  return q === -1 ? { path: target.slice(pathStart), query: undefined } : { path: target.slice(pathStart, q), query: target.slice(q + 1) };
}

/**
 * Parses the head of the request in `bytes[from, to)` (the whole of `bytes`
 * by default). With `onlyHeaders`, `headers` holds only the fields of those
 * names: what a span needs, without a string and an object for every other
 * field a browser sends. The names must be lower-case tokens ("host"): the
 * other lines are then not checked, and the result is the full parse's,
 * filtered, only because such a name makes its line valid.
 */
export function parseRequestHead(bytes: Uint8Array, from = 0, to?: number, options?: { onlyHeaders?: readonly string[] }): ParseResult<RequestHead> {
  const f = frame(bytes, parseCutRequestLine, from, to);
  if (isVerdict(f)) return f;
  const { text, lineStart: s, lineEnd: e } = f;

  const methodEnd = scanMethod(text, s, e);
  if (methodEnd < 0) return NOT_HTTP;
  const lastSp = text.lastIndexOf(' ', e - 1);
  // A single SP means no version: HTTP/0.9 or some other line protocol.
  if (lastSp === methodEnd) return NOT_HTTP;

  const v = lastSp + 1;
  if (e - v !== 8 || !text.startsWith(HTTP_NAME, v)) return MALFORMED;
  const major = text.charCodeAt(v + 5);
  const minor = text.charCodeAt(v + 7);
  if (!isDigit(major) || text.charCodeAt(v + 6) !== 0x2e || !isDigit(minor)) return MALFORMED;
  if (major !== DIGIT_1) return NOT_HTTP;
  if (minor !== DIGIT_0 && minor !== DIGIT_1) return MALFORMED;

  const ts = methodEnd + 1;
  if (ts === lastSp) return MALFORMED;
  for (let i = ts; i < lastSp; i++) {
    if (!isTargetChar(text.charCodeAt(i))) return MALFORMED;
  }

  const method = text.slice(s, methodEnd);
  const target = text.slice(ts, lastSp);
  const { path, query } = splitTarget(method, target);
  const scan = parseHeaders(text, f.next, options?.onlyHeaders);
  return {
    ok: true,
    value: {
      method,
      target,
      targetTruncated: false,
      path,
      query,
      version: minor === DIGIT_1 ? '1.1' : '1.0',
      headers: scan.headers,
      headersComplete: scan.complete,
      headBytes: scan.headBytes,
    },
  };
}

/**
 * Parses the head of the response in `bytes[from, to)`. With `headers: false`
 * only the status line is read (headers stays empty): what a span needs,
 * at a fraction of the cost.
 */
export function parseResponseHead(bytes: Uint8Array, from = 0, to?: number, options?: { headers?: boolean }): ParseResult<ResponseHead> {
  const f = frame(bytes, parseCutStatusLine, from, to, options?.headers === false);
  if (isVerdict(f)) return f;
  const { text, lineStart: s, lineEnd: e } = f;

  // A complete line must carry the whole protocol name; a cut one (see
  // parseCutStatusLine) only has to agree with the part of it that arrived.
  if (e - s < HTTP_NAME.length || !statusPrefixPlausible(text, s, e)) return NOT_HTTP;
  // "HTTP/1.1 200" is the shortest valid status line.
  if (e - s < 12) return MALFORMED;
  const major = text.charCodeAt(s + 5);
  const minor = text.charCodeAt(s + 7);
  if (!isDigit(major) || text.charCodeAt(s + 6) !== 0x2e || text.charCodeAt(s + 8) !== SP) return MALFORMED;
  if (minor !== DIGIT_0 && minor !== DIGIT_1) return MALFORMED;
  const d1 = text.charCodeAt(s + 9);
  const d2 = text.charCodeAt(s + 10);
  const d3 = text.charCodeAt(s + 11);
  if (!isDigit(d1) || !isDigit(d2) || !isDigit(d3)) return MALFORMED;
  const statusCode = (d1 - DIGIT_0) * 100 + (d2 - DIGIT_0) * 10 + (d3 - DIGIT_0);
  if (statusCode < 100) return MALFORMED;
  // The SP before an empty reason is required by RFC 9112 but often omitted.
  if (e > s + 12 && text.charCodeAt(s + 12) !== SP) return MALFORMED;

  const scan = options?.headers === false ? NO_HEADERS : parseHeaders(text, f.next);
  return {
    ok: true,
    value: {
      version: minor === DIGIT_1 ? '1.1' : '1.0',
      statusCode,
      reason: e > s + 13 ? text.slice(s + 13, e) : '',
      headers: scan.headers,
      headersComplete: scan.complete,
      headBytes: scan.headBytes,
    },
  };
}

const NO_HEADERS: HeaderScan = Object.freeze({ headers: [] as HeaderField[], complete: false, headBytes: 0 }) as HeaderScan;

/** Value of the first field named `lowerName` (which must be lower-case). */
export function headerValue(headers: readonly HeaderField[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].name === lowerName) return headers[i].value;
  }
  return undefined;
}
