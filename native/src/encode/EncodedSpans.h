// OTLP Span messages written on the reader thread, so that the JavaScript
// thread only places them under their resource and sends them
// (docs/design-notes.md, "Spans encoded by the addon").
//
// The meaning of an exchange is its describer's to say (src/protocols/);
// each encoder here is a second reading of the same records, for the
// common case of one protocol only: it encodes an exchange only when it
// can tell that the JavaScript path would give exactly these bytes, and
// leaves every other record to JavaScript. test/native/encodedSpans.test.ts
// requires byte equality with the JavaScript path over a corpus and a fuzz
// per protocol; the one known difference is times past 2^53 ns of uptime
// (104 days), which JavaScript rounds to a double and the addon keeps exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace sonde {

// What the RED metrics read of an entry's span, and so which of its
// fields mean something. Needs to line up with src/native/encodedSpans.ts
// (EncodedSpanShape).
enum class EncodedSpanShape : uint8_t {
  Http = 1,  // status_code, method, http_minor (and the server for a client)
  Grpc = 2,  // status_code is grpc-status; name is "service/method" (and the server for a client)
  Http2 = 3, // status_code, method (and the server for a client); the version is 2
};

#pragma pack(push, 1)
// One encoded span, followed by its Span message (no tag, no length).
// Entries follow the order of their records. Needs to line up with
// src/native/encodedSpans.ts; test/native/layout.test.ts checks it.
struct EncodedSpanEntry {
  uint32_t entry_bytes;    // this header and the Span message
  uint32_t record_offset;  // of the ExchangeRecord it encodes, in the records batch
  uint32_t span_bytes;
  // Where the Span's start_time_unix_nano and end_time_unix_nano (fixed64)
  // sit in the Span message. They hold CLOCK_MONOTONIC ns: JavaScript owns
  // the one conversion to wall-clock time (src/native/clock.ts) and writes
  // the epoch time over them.
  uint32_t start_time_at;
  uint32_t end_time_at;
  uint16_t status_code;    // HTTP: the response's, 100..999; gRPC: grpc-status
  uint8_t method;          // HTTP: index into kEncodedSpanMethods (Http1Spans.h)
  uint8_t http_minor;      // HTTP/1.<minor>: 0 or 1
  uint64_t end_ns;         // CLOCK_MONOTONIC ns at which the span ends
  // The server.address attribute's value, in the Span message, and
  // server.port: what the RED metrics key a client span on.
  uint32_t server_address_at;
  uint16_t server_address_bytes;
  uint16_t server_port;
  // The span's name, in the Span message: a gRPC span's metrics read
  // rpc.service and rpc.method from it.
  uint32_t name_at;
  uint16_t name_bytes;
  uint8_t shape;           // EncodedSpanShape
  uint8_t unused;
};
#pragma pack(pop)

static_assert(sizeof(EncodedSpanEntry) == 48, "EncodedSpanEntry layout changed: update src/native/encodedSpans.ts");

// Where encoded entries are appended: bytes that grow without being
// zero-filled. An entry is sized for its largest message before it is
// written and cut to what was written after; a std::vector's resize
// zero-filled that room for every span, a fortieth of the reader thread's
// time (perf, nginx at 15k req/s), and a vector with an allocator that
// skips it copies byte by byte when it grows. The encoders write every
// byte they keep.
class EncodedBytes {
 public:
  EncodedBytes() = default;
  EncodedBytes(const EncodedBytes&) = delete;
  EncodedBytes& operator=(const EncodedBytes&) = delete;
  ~EncodedBytes() { std::free(data_); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  void reserve(size_t n) {
    if (n > capacity_) reallocate(n);
  }
  // Bytes past the old size are left as they were.
  void resize(size_t n) {
    if (n > capacity_) reallocate(n > 2 * capacity_ ? n : 2 * capacity_);
    size_ = n;
  }

 private:
  void reallocate(size_t n) {
    void* grown = std::realloc(data_, n);
    if (!grown) throw std::bad_alloc();
    data_ = static_cast<uint8_t*>(grown);
    capacity_ = n;
  }
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Appends an entry for every record of `records` (ExchangeRecords back to
// back) that an encoder takes. Returns the number of entries appended.
size_t encodeSpans(const uint8_t* records, size_t bytes, EncodedBytes& out);

}  // namespace sonde
