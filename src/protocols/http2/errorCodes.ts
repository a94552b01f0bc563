/** HTTP/2 error codes (RFC 9113 §7), as RST_STREAM and GOAWAY carry them in `Exchange.endErrorCode`. */
const NAMES: readonly string[] = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/**
 * The code's name ("CANCEL"); a code outside the registry is shown in hex
 * ("0x1f"), as RFC 9113 writes codes, since §7 forbids reading meaning
 * into it.
 */
export function http2ErrorName(code: number): string {
  return Number.isInteger(code) && code >= 0 && code < NAMES.length ? NAMES[code] : `0x${(code >>> 0).toString(16)}`;
}
