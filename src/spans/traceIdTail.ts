/** Eight hex digits of a trace id from `from`, as an unsigned number. */
function eightHexDigits(traceId: string, from: number): number {
  let v = 0;
  for (let i = from; i < from + 8; i++) {
    const c = traceId.charCodeAt(i);
    v = v * 16 + (c <= 57 ? c - 48 : (c | 0x20) - 87);
  }
  return v;
}

/**
 * The trace id's last 8 hex digits as a number: W3C's random part, so the
 * same for every span of a trace and uniform over traces. A fraction of
 * 2^32, it samples traces; as a key, it tells at once that most spans'
 * traces are not held, without making their hex strings.
 */
export function traceIdTail(traceId: string): number {
  return eightHexDigits(traceId, traceId.length - 8);
}

/** The range of traceIdTail and traceIdRatioBits: 2^32. */
export const TRACE_ID_TAIL_RANGE = 0x1_0000_0000;

/**
 * Hex digits 16-23 of the trace id as a number: the upper half of its lower
 * 8 bytes, which the Go and Python SDKs' TraceIdRatioBased samplers compare
 * with the fraction of 2^64. Compared with the fraction of 2^32, it gives
 * their decision except within 2^-32 of the boundary.
 */
export function traceIdRatioBits(traceId: string): number {
  return eightHexDigits(traceId, 16);
}
