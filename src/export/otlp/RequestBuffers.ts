/**
 * The buffers export requests are written into, reused from one export to
 * the next.
 *
 * A fresh buffer per request (1.6 MB at saturation, several a second)
 * counts as external memory to V8 until a full collection frees it, and
 * V8 starts a full collection when the old generation plus the external
 * memory allocated since the last one nears its limit: with grpc-js's
 * framed copy of each request, 20 MB/s of it made V8 run one about every
 * half second at saturation, for a heap that hardly grew.
 *
 * The gRPC transport must be handed an ArrayBuffer of exactly the
 * request's size (OtlpEncodedExporter: it wraps an ArrayBuffer but copies
 * anything else), so each buffer is a resizable ArrayBuffer, resized to
 * each request. V8 counts only its current size.
 *
 * A buffer is reused only after the export that used it has reported its
 * result: until then the transport may still read it (a retry, or a call
 * waiting for its channel to connect). Shrinking a resizable ArrayBuffer
 * makes the memory past its new size unreadable, so a transport that may
 * still read a request after its result (gzip on a worker thread, an HTTP
 * body still being written when the backend has answered) must not be
 * given reused buffers: the exporter passes `maxBuffers: 0` for those
 * (OtlpEncodedExporter). Exports whose results are still awaited beyond
 * `maxBuffers` get fresh buffers, as does a request larger than
 * `maxBytes`.
 */
export class RequestBuffers {
  readonly #maxBytes: number;
  readonly #maxBuffers: number;
  readonly #free: ArrayBuffer[] = [];
  readonly #own = new WeakSet<ArrayBuffer>();
  #made = 0;
  #fresh = 0;

  constructor(options: { maxBytes: number; maxBuffers?: number }) {
    this.#maxBytes = options.maxBytes;
    this.#maxBuffers = options.maxBuffers ?? 2;
  }

  /** Resizable buffers made so far (at most maxBuffers). */
  get made(): number {
    return this.#made;
  }

  /** Requests that got a fresh buffer instead: too large, every reusable one still in use, or reuse off (maxBuffers 0). */
  get fresh(): number {
    return this.#fresh;
  }

  /** A buffer of exactly `size` bytes; hand it back with {@link give} once its export has its result. */
  take(size: number): Buffer {
    if (size <= this.#maxBytes) {
      let buffer = this.#free.pop();
      if (!buffer && this.#made < this.#maxBuffers) {
        buffer = new ArrayBuffer(size, { maxByteLength: this.#maxBytes });
        this.#own.add(buffer);
        this.#made++;
      }
      if (buffer) {
        buffer.resize(size);
        return Buffer.from(buffer);
      }
    }
    this.#fresh++;
    return Buffer.allocUnsafeSlow(size);
  }

  give(request: Uint8Array): void {
    const buffer = request.buffer;
    if (buffer instanceof ArrayBuffer && this.#own.has(buffer) && !this.#free.includes(buffer)) this.#free.push(buffer);
  }
}
