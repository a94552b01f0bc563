/**
 * gRPC status codes (grpc/doc/statuscodes.md) and the grpc-message field
 * (grpc/doc/PROTOCOL-HTTP2.md).
 */

const NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** "NOT_FOUND" for 5; a code outside the registry as its decimal number. */
export function grpcStatusName(code: number): string {
  return Number.isInteger(code) && code >= 0 && code < NAMES.length ? NAMES[code] : String(code);
}

/**
 * The codes that make a server span an error, per the OpenTelemetry gRPC
 * conventions: the others (NOT_FOUND, INVALID_ARGUMENT, ...) are the
 * caller's doing, and only client spans call them errors.
 */
const SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

export function isGrpcError(code: number, isServer: boolean): boolean {
  return isServer ? SERVER_ERRORS.has(code) : code !== 0;
}

/**
 * grpc-status as an integer: decimal digits only (at most 10, so the value
 * stays a safe integer); undefined for anything else.
 */
export function parseGrpcStatus(text: string): number | undefined {
  if (text.length === 0 || text.length > 10) return undefined;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * grpc-message is UTF-8, percent-encoded by the sender ("%" followed by two
 * hex digits); the spec asks receivers to keep a malformed escape as it is
 * rather than fail. The field arrives as latin1 (one char per byte), so
 * bytes a sender wrote raw instead of escaping come back as the UTF-8 they
 * were; invalid UTF-8 becomes U+FFFD.
 */
export function decodeGrpcMessage(value: string): string {
  const bytes = Buffer.allocUnsafe(value.length);
  let n = 0;
  let plain = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length) {
      const hi = hexValue(value.charCodeAt(i + 1));
      const lo = hexValue(value.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = hi * 16 + lo;
        i += 2;
        plain = false;
        continue;
      }
    }
    if (c > 0x7f) plain = false;
    bytes[n++] = c & 0xff;
  }
  return plain ? value : bytes.toString('utf8', 0, n);
}
