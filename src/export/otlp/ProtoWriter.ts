/**
 * A protobuf writer made for one pass: a length-delimited field reserves one
 * byte for its length and moves its content only when it turns out to be 128
 * bytes or longer. Strings are written by Buffer's native UTF-8 encoder.
 * The buffer is reused from message to message; `take` copies the result out.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const TWO_POW_32 = 4294967296;

const HEX_VALUES = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEX_VALUES[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUES[65 + i] = HEX_VALUES[97 + i] = 10 + i;

export { WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 };

export function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(initialBytes);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafeSlow(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** A non-negative integer below 2^53. */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    while (value >= 128) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    buf[pos++] = value;
    this.pos = pos;
  }

  /** int64 as protobuf writes it: negatives take ten bytes of two's complement. */
  int64(value: number): void {
    if (value >= 0) {
      this.varint(value);
      return;
    }
    const big = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    let rest = big;
    while (rest >= 128n) {
      this.buf[this.pos++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buf[this.pos++] = Number(rest);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  /** Two 32-bit halves of an unsigned 64-bit value. */
  fixed64(low: number, high: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** [seconds, nanoseconds] as unsigned 64-bit nanoseconds, exactly. */
  hrTime(seconds: number, nanos: number): void {
    // seconds * 1e9 passes 2^53: split it in 16-bit halves so that every
    // product stays exact.
    const lowSec = seconds % 65536;
    const highSec = Math.floor(seconds / 65536);
    const fromLow = lowSec * 1e9 + nanos;
    const fromHigh = highSec * 1e9; // times 2^16
    const lowPart = (fromLow % TWO_POW_32) + (fromHigh % 65536) * 65536;
    const low = lowPart % TWO_POW_32;
    const high = Math.floor(fromLow / TWO_POW_32) + Math.floor(fromHigh / 65536) + Math.floor(lowPart / TWO_POW_32);
    this.fixed64(low, high);
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /** `hex` is exactly `byteLength` bytes of hex; a digit that is not hex counts as 0. */
  hexBytes(hex: string, byteLength: number): void {
    this.varint(byteLength);
    this.ensure(byteLength);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < byteLength; i++) buf[pos++] = (HEX_VALUES[hex.charCodeAt(2 * i) & 0x7f] << 4) | HEX_VALUES[hex.charCodeAt(2 * i + 1) & 0x7f];
    this.pos = pos;
  }

  string(value: string): void {
    const length = value.length;
    // Short ASCII, most of what a span holds, is copied here: a call into
    // Buffer's native encoder costs more than the loop.
    if (length < 128) {
      this.ensure(length + 1);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < length; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      if (i === length) {
        buf[this.pos] = length;
        this.pos = start + length;
        return;
      }
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.ensure(length * 3 + 5);
    const at = this.beginLength();
    this.pos += this.buf.write(value, this.pos, 'utf8');
    this.endLength(at);
  }

  /** Appends bytes already encoded (a cached sub-message). */
  raw(value: Uint8Array): void {
    const length = value.length;
    this.ensure(length);
    if (length < 64) {
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < length; i++) buf[pos++] = value[i];
      this.pos = pos;
      return;
    }
    this.buf.set(value, this.pos);
    this.pos += length;
  }

  /** Reserves one byte for a length; pass the result to {@link endLength}. */
  beginLength(): number {
    this.ensure(1);
    return this.pos++;
  }

  endLength(at: number): void {
    const length = this.pos - at - 1;
    if (length < 128) {
      this.buf[at] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let value = length;
    let p = at;
    while (value >= 128) {
      this.buf[p++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[p] = value;
  }

  /** A copy of what was written since `from`. */
  take(from = 0): Buffer {
    return Buffer.from(this.buf.subarray(from, this.pos));
  }
}
