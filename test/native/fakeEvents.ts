/**
 * Writes the kernel's ring-buffer records (bpf/shared/events.h) byte for
 * byte, so the correlator can be driven without a kernel. layout.test.ts
 * checks these offsets against the native build.
 */
export const EVENT_LAYOUT = {
  headerBytes: 48,
  sourceOffset: 32,
  protocolOffset: 33,
  causeFdOffset: 36,
  causeGenerationOffset: 40,
  tupleOffset: 48,
  prevOffset: 88,
  commOffset: 112,
  chunkBytesOffset: 128,
  payloadBytesOffset: 132,
  msgStartHeaderBytes: 136,
  closeEventBytes: 112,
  selfConnectEventBytes: 88,
  connectEventBytes: 88,
  processExitEventBytes: 48,
  msgContinueHeaderBytes: 56,
  /** struct sonde_h2_frames_event: header, chunk_bytes, payload_bytes, first_frame_offset, flags, 5 pad bytes. */
  h2FramesHeaderBytes: 64,
  h2ChunkBytesOffset: 48,
  h2PayloadBytesOffset: 52,
  h2FirstFrameOffsetOffset: 56,
  h2FlagsOffset: 58,
  /** SONDE_H2_EVENT_BYTES: most payload one frames event carries. */
  h2EventBytes: 16384,
  /** SONDE_H2_COPY_BOUND: most payload bytes of a non-DATA frame the kernel copies. */
  h2CopyBound: 16384,
} as const;

export const Kind = { MsgStart: 1, Close: 2, SelfConnect: 3, ProcessExit: 4, MsgContinue: 5, H2Frames: 6, Connect: 7 } as const;
/** SONDE_NO_CAUSE: the thread's last read was from no connection the kernel follows. */
export const NO_CAUSE = -1;
export const Dir = { None: 0, Ingress: 1, Egress: 2 } as const;
export const Cls = { Unknown: 0, Request: 1, Response: 2, H2Preface: 3, H2Frames: 4 } as const;
export const Role = { Unknown: 0, Server: 1, Client: 2 } as const;
export const Source = { Socket: 1, Tls: 2 } as const;
export const Proto = { Unknown: 0, Http1: 1, Http2: 2 } as const;
/** enum sonde_h2_frames_flags */
export const H2Flags = { SyncStart: 1, MidLife: 2, Lost: 4 } as const;
/** first_frame_offset when no frame header starts in the event's payload. */
export const NO_FRAME_START = 0xffff;

export interface Tuple {
  localAddr: string; // dotted IPv4, stored v4-mapped
  localPort: number;
  remoteAddr: string;
  remotePort: number;
}

export interface HeaderFields {
  pid: number;
  tid?: number;
  fd: number;
  generation: number;
  seq?: number;
  ts: bigint;
  role?: number;
  comm?: string;
  /** Default: Source.Socket. */
  source?: number;
  /** Default: Proto.Http1, as the kernel says once a connection classified. */
  protocol?: number;
  /** The connection the thread last read before this event (egress starts, connects); default none. */
  cause?: { fd: number; generation: number };
}

function writeV4Mapped(buf: Buffer, at: number, addr: string): void {
  buf.fill(0, at, at + 10);
  buf[at + 10] = 0xff;
  buf[at + 11] = 0xff;
  addr.split('.').forEach((octet, i) => (buf[at + 12 + i] = Number(octet)));
}

function writeHeader(buf: Buffer, kind: number, h: HeaderFields, direction = 0, msgClass = 0): void {
  buf[0] = kind;
  buf[1] = direction;
  buf[2] = msgClass;
  buf[3] = h.role ?? Role.Unknown;
  buf.writeUInt32LE(h.pid, 4);
  buf.writeUInt32LE(h.tid ?? h.pid, 8);
  buf.writeInt32LE(h.fd, 12);
  buf.writeUInt32LE(h.generation, 16);
  buf.writeUInt32LE(h.seq ?? 0, 20);
  buf.writeBigUInt64LE(h.ts, 24);
  buf[EVENT_LAYOUT.sourceOffset] = h.source ?? Source.Socket;
  buf[EVENT_LAYOUT.protocolOffset] = h.protocol ?? Proto.Http1;
  buf.writeInt32LE(h.cause?.fd ?? NO_CAUSE, EVENT_LAYOUT.causeFdOffset);
  buf.writeUInt32LE(h.cause?.generation ?? 0, EVENT_LAYOUT.causeGenerationOffset);
}

function writeTuple(buf: Buffer, t: Tuple): void {
  const at = EVENT_LAYOUT.tupleOffset;
  writeV4Mapped(buf, at, t.localAddr);
  writeV4Mapped(buf, at + 16, t.remoteAddr);
  buf.writeUInt16LE(t.localPort, at + 32);
  buf.writeUInt16LE(t.remotePort, at + 34);
  buf.writeUInt16LE(2, at + 36);
}

export interface PrevMessage {
  lastNs: bigint;
  bytes: number;
  seq: number;
  direction: number;
}

/** struct sonde_prev_message, where msg-start and close events carry it. */
function writePrev(buf: Buffer, m: PrevMessage): void {
  const at = EVENT_LAYOUT.prevOffset;
  buf.writeBigUInt64LE(m.lastNs, at);
  buf.writeBigUInt64LE(BigInt(m.bytes), at + 8);
  buf.writeUInt32LE(m.seq, at + 16);
  buf[at + 20] = m.direction;
}

export function msgStart(
  h: HeaderFields & { seq: number },
  tuple: Tuple,
  direction: number,
  msgClass: number,
  payload: string | Buffer,
  prev: PrevMessage = { lastNs: 0n, bytes: 0, seq: 0, direction: 0 },
): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const buf = Buffer.alloc(EVENT_LAYOUT.msgStartHeaderBytes + body.length);
  writeHeader(buf, Kind.MsgStart, h, direction, msgClass);
  writeTuple(buf, tuple);
  writePrev(buf, prev);
  buf.write(h.comm ?? 'fake', EVENT_LAYOUT.commOffset, 15, 'latin1');
  buf.writeUInt32LE(body.length, EVENT_LAYOUT.chunkBytesOffset);
  buf.writeUInt32LE(body.length, EVENT_LAYOUT.payloadBytesOffset);
  body.copy(buf, EVENT_LAYOUT.msgStartHeaderBytes);
  return buf;
}

/** More bytes of the head of message `seq` (a continuation the kernel sends after a start). */
export function msgContinue(h: HeaderFields & { seq: number }, direction: number, payload: string | Buffer, chunkBytes?: number): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const buf = Buffer.alloc(EVENT_LAYOUT.msgContinueHeaderBytes + body.length);
  writeHeader(buf, Kind.MsgContinue, h, direction, 0);
  buf.writeUInt32LE(chunkBytes ?? body.length, EVENT_LAYOUT.headerBytes);
  buf.writeUInt32LE(body.length, EVENT_LAYOUT.headerBytes + 4);
  body.copy(buf, EVENT_LAYOUT.msgContinueHeaderBytes);
  return buf;
}

export interface H2FramesOptions {
  /** enum sonde_h2_frames_flags bits; default none. */
  flags?: number;
  /** Where the first frame header in the payload starts; default NO_FRAME_START. */
  firstFrameOffset?: number;
  /** Bytes the syscall moved; default the payload's length. */
  chunkBytes?: number;
}

/**
 * struct sonde_h2_frames_event: the frames one syscall moved in one direction
 * of an HTTP/2 connection, as the kernel's walk leaves them (DATA frames as
 * their header alone, other payloads cut at SONDE_H2_COPY_BOUND). Unlike the
 * kernel, it does not cap the payload at SONDE_H2_EVENT_BYTES, so that tests
 * can write oversized events.
 */
export function h2Frames(h: HeaderFields & { seq: number }, direction: number, payload: Buffer, o: H2FramesOptions = {}): Buffer {
  const buf = Buffer.alloc(EVENT_LAYOUT.h2FramesHeaderBytes + payload.length);
  writeHeader(buf, Kind.H2Frames, { protocol: Proto.Http2, ...h }, direction, 0);
  buf.writeUInt32LE(o.chunkBytes ?? payload.length, EVENT_LAYOUT.h2ChunkBytesOffset);
  buf.writeUInt32LE(payload.length, EVENT_LAYOUT.h2PayloadBytesOffset);
  buf.writeUInt16LE(o.firstFrameOffset ?? NO_FRAME_START, EVENT_LAYOUT.h2FirstFrameOffsetOffset);
  buf[EVENT_LAYOUT.h2FlagsOffset] = o.flags ?? 0;
  payload.copy(buf, EVENT_LAYOUT.h2FramesHeaderBytes);
  return buf;
}

export function closeEvent(h: HeaderFields & { seq: number }, tuple: Tuple, last: PrevMessage): Buffer {
  const buf = Buffer.alloc(EVENT_LAYOUT.closeEventBytes);
  writeHeader(buf, Kind.Close, h);
  writeTuple(buf, tuple);
  writePrev(buf, last);
  return buf;
}

export function selfConnect(h: HeaderFields, tuple: Tuple): Buffer {
  const buf = Buffer.alloc(EVENT_LAYOUT.selfConnectEventBytes);
  writeHeader(buf, Kind.SelfConnect, h);
  writeTuple(buf, tuple);
  return buf;
}

/** connect() of a traced process: the tuple, and in the header the thread's cause at that moment. */
export function connectEvent(h: HeaderFields, tuple: Tuple): Buffer {
  const buf = Buffer.alloc(EVENT_LAYOUT.connectEventBytes);
  writeHeader(buf, Kind.Connect, { role: Role.Client, ...h });
  writeTuple(buf, tuple);
  return buf;
}

export function processExit(h: HeaderFields): Buffer {
  const buf = Buffer.alloc(EVENT_LAYOUT.processExitEventBytes);
  writeHeader(buf, Kind.ProcessExit, h);
  return buf;
}

export function mirrored(t: Tuple): Tuple {
  return { localAddr: t.remoteAddr, localPort: t.remotePort, remoteAddr: t.localAddr, remotePort: t.localPort };
}

/**
 * One side of one connection, numbering its messages the way the kernel
 * does and carrying each message's summary in the next boundary event.
 */
export class ConnScript {
  seq = 0;
  #cur: PrevMessage = { lastNs: 0n, bytes: 0, seq: 0, direction: 0 };
  constructor(readonly h: Omit<HeaderFields, 'ts' | 'seq'>, readonly tuple: Tuple) {}

  /** A message of `bytes` bytes whose first chunk is at `ts` and last at `lastNs`. */
  message(ts: bigint, direction: number, msgClass: number, payload: string, lastNs = ts, bytes = Buffer.byteLength(payload, 'latin1')): Buffer {
    this.seq += 1;
    const ev = msgStart({ ...this.h, ts, seq: this.seq }, this.tuple, direction, msgClass, payload, this.#cur);
    this.#cur = { lastNs, bytes, seq: this.seq, direction };
    return ev;
  }

  /**
   * A message written by a thread whose last read was of `cause` (its
   * fd and generation in the header, as the kernel puts them on egress
   * starts); null: a read of a connection the kernel does not follow.
   */
  writtenAfterReading(cause: ConnScript | null, ts: bigint, msgClass: number, payload: string): Buffer {
    this.seq += 1;
    const causeFields = cause ? { fd: cause.h.fd, generation: cause.h.generation } : undefined;
    const ev = msgStart({ ...this.h, ts, seq: this.seq, cause: causeFields }, this.tuple, Dir.Egress, msgClass, payload, this.#cur);
    this.#cur = { lastNs: ts, bytes: Buffer.byteLength(payload, 'latin1'), seq: this.seq, direction: Dir.Egress };
    return ev;
  }

  /** This connection's connect(), by a thread whose last read was of `cause`. */
  connect(ts: bigint, cause: ConnScript | null): Buffer {
    return connectEvent({ ...this.h, ts, cause: cause ? { fd: cause.h.fd, generation: cause.h.generation } : undefined }, this.tuple);
  }

  /** Frames events sent per direction (sonde_h2_walk.seq), as the kernel numbers them. */
  framesSeq: Record<number, number> = {};

  /** An H2 frames event, numbered per direction from 1, apart from the message starts, as the kernel does. */
  frames(ts: bigint, direction: number, payload: Buffer, o: H2FramesOptions = {}): Buffer {
    const seq = (this.framesSeq[direction] ?? 0) + 1;
    this.framesSeq[direction] = seq;
    return h2Frames({ ...this.h, ts, seq }, direction, payload, o);
  }

  close(ts: bigint): Buffer {
    return closeEvent({ ...this.h, ts, seq: this.seq }, this.tuple, this.#cur);
  }
}
