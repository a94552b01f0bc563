/**
 * A DataView over a Buffer from the addon, for reading its fixed fields:
 * V8 inlines a DataView's getters, where Buffer's readUInt32LE and kin
 * check their argument on every call. An empty Buffer the addon hands over
 * may sit on a detached ArrayBuffer, which a DataView refuses: it gets an
 * empty view of its own.
 */
const EMPTY = new DataView(new ArrayBuffer(0));

export function viewOf(buf: Buffer): DataView {
  return buf.length === 0 ? EMPTY : new DataView(buf.buffer, buf.byteOffset, buf.length);
}

/** The little-endian 64-bit unsigned integer at `at`, as a double (exact below 2^53). */
export function u64At(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * 4294967296 + view.getUint32(at, true);
}
