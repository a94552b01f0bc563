/**
 * Query-string redaction for URLs that end up in span attributes.
 *
 * Names are judged after percent-decoding, so "%74oken" cannot sneak past.
 * Short keywords ("key", "sig", "otp", "card", ...) are matched as whole
 * words of the name, because as substrings they hit harmless names
 * ("monkey", "design", "footprint", "discard").
 */

export const REDACTED = 'REDACTED';

/** Long enough to be unambiguous anywhere in a name ("x-amz-security-token", "client_secret"). */
const SUBSTRINGS = ['token', 'password', 'passwd', 'pwd', 'secret', 'signature', 'session', 'sessid', 'credential', 'jwt'];

/** Matched only as a whole word of the name ("api_key", "apiKey", "x-sig", "card_number"). */
const WORDS = new Set(['key', 'sig', 'ssn', 'card', 'cvv', 'cvv2', 'cvc', 'otp', 'totp']);

/**
 * Lower-case run-together names that contain a sensitive word without any
 * boundary to find it by; a blanket "ends with key" would also hit "monkey".
 */
const COMPOUNDS = new Set([
  'apikey',
  'accesskey',
  'secretkey',
  'privatekey',
  'clientkey',
  'appkey',
  'masterkey',
  'licensekey',
  'subscriptionkey',
  'signingkey',
  'encryptionkey',
  'consumerkey',
  'devkey',
  'userkey',
  'sharedkey',
  'accountkey',
  'storagekey',
  'creditcard',
  'debitcard',
  'cardnumber',
  'cardno',
  'cardnum',
]);

/**
 * Cheap pre-filter: a name containing none of these cannot be sensitive.
 * The addon encodes a query in which none occurs as it is
 * (native/src/encode/Http1Spans.h, kRedactionHints: the same list).
 */
export const REDACTION_HINTS = ['token', 'pass', 'pwd', 'secret', 'sig', 'sess', 'auth', 'credential', 'jwt', 'code', 'ssn', 'card', 'cvv', 'cvc', 'otp', 'key'];

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Byte-wise %XX decoding. Unlike decodeURIComponent it never throws on bad
 * escapes or invalid UTF-8; every keyword is ASCII, so decoding multi-byte
 * sequences as single latin1 chars loses nothing that matters here.
 */
function percentDecode(s: string): string {
  if (s.indexOf('%') === -1) return s;
  const parts: string[] = [];
  let from = 0;
  for (let i = s.indexOf('%'); i !== -1 && i + 2 < s.length; i = s.indexOf('%', i + 1)) {
    const hi = hexValue(s.charCodeAt(i + 1));
    const lo = hexValue(s.charCodeAt(i + 2));
    if (hi === -1 || lo === -1) continue;
    parts.push(s.slice(from, i), String.fromCharCode(hi * 16 + lo));
    from = i + 3;
    i += 2;
  }
  parts.push(s.slice(from));
  return parts.join('');
}

function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}

function isAlnum(c: number): boolean {
  return isLower(c) || isUpper(c) || (c >= 0x30 && c <= 0x39);
}

/**
 * Lower-cased words of a name, split at non-alphanumerics and at camelCase
 * boundaries ("userSSN" -> user, ssn; "APIKey" -> api, key).
 */
function words(name: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : -1;
    if (c === -1 || !isAlnum(c)) {
      if (start !== -1) out.push(name.slice(start, i).toLowerCase());
      start = -1;
      continue;
    }
    if (start === -1) {
      start = i;
      continue;
    }
    const prev = name.charCodeAt(i - 1);
    const camel = isUpper(c) && !isUpper(prev);
    const acronymEnd = isUpper(c) && isUpper(prev) && i + 1 < name.length && isLower(name.charCodeAt(i + 1));
    if (camel || acronymEnd) {
      out.push(name.slice(start, i).toLowerCase());
      start = i;
    }
  }
  return out;
}

// Query parameter names repeat from request to request: each is judged once.
const judgedNames = new Map<string, boolean>();
const JUDGED_NAMES_MAX = 4096;

export function isSensitiveParamName(name: string): boolean {
  let sensitive = judgedNames.get(name);
  if (sensitive === undefined) {
    sensitive = judgeParamName(name);
    if (judgedNames.size >= JUDGED_NAMES_MAX) judgedNames.clear();
    judgedNames.set(name, sensitive);
  }
  return sensitive;
}

function judgeParamName(name: string): boolean {
  const decoded = percentDecode(name);
  const lower = decoded.toLowerCase();

  let hinted = false;
  for (const h of REDACTION_HINTS) {
    if (lower.includes(h)) {
      hinted = true;
      break;
    }
  }
  if (!hinted) return false;

  for (const s of SUBSTRINGS) {
    if (lower.includes(s)) return true;
  }
  // "auth" but not "author"/"authority", which name people and hosts, not secrets.
  for (let i = lower.indexOf('auth'); i !== -1; i = lower.indexOf('auth', i + 1)) {
    if (!lower.startsWith('author', i) || lower.startsWith('authoriz', i)) return true;
  }
  // Only the bare name: "code" is the OAuth authorization code, "zipcode" is not secret.
  if (lower === 'code') return true;

  for (const w of words(decoded)) {
    if (WORDS.has(w) || COMPOUNDS.has(w)) return true;
  }
  return false;
}

/**
 * The query with values of sensitive parameters replaced by "REDACTED".
 * Everything else is byte-for-byte unchanged: order, names, '&' separators,
 * parameters without '=', and existing encodings. Empty values stay empty,
 * since there is nothing to hide and "sent an empty token" helps debugging.
 */
export function redactQuery(query: string): string {
  if (query.indexOf('=') === -1) return query;
  let out: string[] | undefined;
  let from = 0;
  let pos = 0;
  while (pos <= query.length) {
    let amp = query.indexOf('&', pos);
    if (amp === -1) amp = query.length;
    const eq = query.indexOf('=', pos);
    if (eq !== -1 && eq < amp - 1 && isSensitiveParamName(query.slice(pos, eq))) {
      if (out === undefined) out = [];
      out.push(query.slice(from, eq + 1), REDACTED);
      from = amp;
    }
    pos = amp + 1;
  }
  if (out === undefined) return query;
  out.push(query.slice(from));
  return out.join('');
}
