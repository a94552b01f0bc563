// One finished request/response exchange as handed to JavaScript: a fixed
// header followed by the request payload and the response payload. Batches
// are these records back to back in one buffer, so a batch of thousands of
// exchanges crosses into JavaScript as one Buffer and one call.
//
// These need to line up with src/native/exchangeDecoder.ts; the binding
// exports sizeof/offsetof (JS_layout) and test/native/layout.test.ts checks
// the decoder against them.
#pragma once

#include <cstdint>

namespace sonde {

enum class ExchangeRole : uint8_t { Server = 1, Client = 2 };

// Which stitcher produced the record, and so how its payloads are to be
// read. PROTOCOL_LIST: requires update in src/native/exchangeDecoder.ts
// (ExchangeProtocol), in JS_layout, and a describer registered in
// src/protocols/index.ts on a new protocol.
enum class Protocol : uint8_t {
  Http1 = 1,
  Http2 = 2,  // payloads: header fields as text lines (HTTP2_PAYLOAD below)
};

// HTTP2_PAYLOAD: how an HTTP/2 exchange's payloads read. Both are decoded
// header fields, one per line ending in "\r\n", in wire order, pseudo-header
// fields included (":method: GET"):
//   "name: value"  a field;
//   "?name"        a field whose value refers to an HPACK dynamic-table
//                  entry inserted before sonde saw the connection;
//   "?"            the same, with the name unknown too.
// The response payload holds the response's header fields, then, when the
// stream ended with trailers, an empty line and the trailer fields. HPACK
// forbids CR, LF and NUL in names and values (RFC 9113 §8.2.1); the
// stitcher replaces any with a space, so lines never break inside a field.

// Bits of ExchangeRecord::flags.
enum ExchangeFlag : uint8_t {
  kNoResponse = 1 << 0,        // timed out waiting for a response
  kClosedBeforeResponse = 1 << 1, // connection closed (or process exited) first
  kEndEstimated = 1 << 2,      // response end not observed: last known chunk
  kEventsLost = 1 << 3,        // a boundary event of this connection was lost
  kPreexistingConnection = 1 << 4, // connection opened before sonde saw it
  kResponseIncomplete = 1 << 5, // closed out before its framing said it was over
  // HTTP/2: some header fields are unknown ("?" lines), or a header block
  // was over its bound or broke HPACK and is missing altogether.
  kHeadersIncomplete = 1 << 6,
  // HTTP/2: RST_STREAM or GOAWAY ended the stream (end_error_code says why).
  kStreamReset = 1 << 7,
};

// How the trace context of the exchange was decided.
enum class LinkSource : uint8_t {
  None = 0,              // new root
  TraceparentHeader = 1, // incoming W3C traceparent
  PeerClient = 2,        // the traced client span on the other end (same host)
  EnclosingServer = 3,   // the server request open on the same thread
  CausingRead = 4,       // the request of the connection the writing thread last read
  ConnectTime = 5,       // the request the thread served when it connected
};

#pragma pack(push, 1)
struct ExchangeRecord {
  uint32_t record_bytes;  // header + both payloads
  uint8_t role;           // ExchangeRole
  uint8_t flags;          // ExchangeFlag bits
  uint8_t link_source;    // LinkSource
  uint8_t trace_flags;    // W3C flags (bit 0: sampled), and kTraceFlagFromTraceparent
  uint32_t pid;
  uint32_t tid;           // thread that read/wrote the request's first chunk
  int32_t fd;
  uint32_t generation;
  uint16_t family;
  uint16_t local_port;
  uint16_t remote_port;
  uint8_t protocol;       // Protocol
  uint8_t source;         // enum sonde_source: where its bytes were seen (socket, TLS library)
  uint8_t local_addr[16];   // v4-mapped for IPv4
  uint8_t remote_addr[16];
  uint64_t request_start_ns;  // CLOCK_MONOTONIC
  uint64_t request_end_ns;
  uint64_t response_start_ns; // 0 when no response was seen
  uint64_t response_end_ns;
  uint64_t request_bytes;
  uint64_t response_bytes;
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_span_id[8]; // all zero for a root
  char comm[16];             // the process's command name when the request started
  uint32_t request_payload_bytes;
  uint32_t response_payload_bytes;
  uint32_t stream_id;     // HTTP/2 stream; 0 for HTTP/1
  uint32_t end_error_code; // HTTP/2 error code of the RST_STREAM/GOAWAY that ended the stream
};
#pragma pack(pop)

static_assert(sizeof(ExchangeRecord) == 176, "ExchangeRecord layout changed: update src/native/exchangeDecoder.ts");

}  // namespace sonde
