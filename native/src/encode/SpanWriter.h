// What every encoder of EncodedSpans.h writes the same way: the Span
// message's fields around its attributes (as src/export/otlp/encodeTraces.ts
// writes them), attributes by literal key, addresses as
// src/native/exchangeDecoder.ts shows them, and the entry's header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../core/ExchangeRecord.h"
#include "EncodedSpans.h"
#include "ProtoOut.h"

namespace sonde {

constexpr uint8_t kSourceTls = 2;  // SONDE_SOURCE_TLS (bpf/shared/events.h): the bytes are TLS plaintext

// Bytes of a record's payload (or a literal): never owned.
struct Text {
  const uint8_t* p = nullptr;
  size_t n = 0;
  bool present() const { return p != nullptr; }
};

// ASCII case-insensitive equality of `n` bytes with lower-case ones.
bool equalsLowerBytes(const uint8_t* p, const char* lower, size_t n);

// The same with a lower-case literal: lengths are compared first, so that
// a field name is compared byte by byte only with names as long as it.
template <size_t N>
bool equalsLower(const uint8_t* p, size_t n, const char (&lower)[N]) {
  return n == N - 1 && equalsLowerBytes(p, lower, n);
}

// src/native/exchangeDecoder.ts's formatAddress: IPv4 arrives v4-mapped and
// is shown dotted; IPv6 as RFC 5952 text. `out` holds 48 bytes.
size_t formatAddress(const uint8_t* address, char* out);

// Decimal digits of `v`; `out` holds 20.
size_t decimal(uint64_t v, char* out);

// Attribute keys are literals: their length is known at compile time.
template <size_t N>
void keyValueStart(ProtoOut& w, const char (&key)[N], size_t& kv, size_t& any) {
  w.tag(9, kWireLen);
  kv = w.beginLength();
  w.lengthDelimited(1, key, N - 1);
  w.tag(2, kWireLen);
  any = w.beginLength();
}

inline void keyValueEnd(ProtoOut& w, size_t kv, size_t any) {
  w.endLength(any);
  w.endLength(kv);
}

template <size_t N>
void stringAttribute(ProtoOut& w, const char (&key)[N], const void* value, size_t n) {
  size_t kv, any;
  keyValueStart(w, key, kv, any);
  w.lengthDelimited(1, value, n);
  keyValueEnd(w, kv, any);
}

template <size_t N>
void stringAttribute(ProtoOut& w, const char (&key)[N], const char* value) {
  stringAttribute(w, key, value, std::strlen(value));
}

template <size_t N>
void stringAttribute(ProtoOut& w, const char (&key)[N], Text value) {
  stringAttribute(w, key, value.p, value.n);
}

template <size_t N>
void intAttribute(ProtoOut& w, const char (&key)[N], uint64_t value) {
  size_t kv, any;
  keyValueStart(w, key, kv, any);
  w.tag(3, kWireVarint);
  w.varint(value);
  keyValueEnd(w, kv, any);
}

template <size_t N>
void trueAttribute(ProtoOut& w, const char (&key)[N]) {
  size_t kv, any;
  keyValueStart(w, key, kv, any);
  w.tag(2, kWireVarint);
  w.varint(1);
  keyValueEnd(w, kv, any);
}

// One entry being written at the end of `out`: its header is filled in by
// the encoder and placed by finish().
class SpanEntryWriter {
 public:
  // Room for the whole entry: `bound` bytes of Span message at most, which
  // the encoder proves its message stays under (finish() aborts sonde if
  // it did not: memory past the room would already be overwritten). From
  // here on the entry is written whole: the encoder has decided.
  SpanEntryWriter(EncodedBytes& out, uint32_t record_offset, size_t bound);

  ProtoOut& w() { return w_; }
  EncodedSpanEntry& entry() { return entry_; }

  // Fields 1 to 8: ids, parent, name, kind, and the times as CLOCK_MONOTONIC
  // ns (their places go into the entry). The name's place too.
  void head(const ExchangeRecord& x, bool server, const void* name, size_t name_n, uint64_t end_ns);
  // The server.address and server.port attributes, and where the entry
  // says they are: what the RED metrics key a client span on.
  void server(Text address, uint64_t port);
  // Fields 10 to 16, after the attributes: no drops, the status (its
  // message only when given), the flags.
  void tail(const ExchangeRecord& x, bool failed, Text message = {});
  void finish();

 private:
  EncodedBytes& out_;
  size_t bound_;
  size_t entry_at_;
  size_t span_at_;
  ProtoOut w_;
  EncodedSpanEntry entry_{};
  bool has_parent_ = false;
};

// The HTTP encoders' last attributes (the status code, and error.type when
// the span failed: 5xx, or a client's 4xx, as describe.ts's spanStatus
// says), the tail, the entry's HTTP fields, and finish().
void finishHttpSpan(SpanEntryWriter& entry, const ExchangeRecord& x, bool server, int status, uint8_t method, uint8_t http_minor,
                    EncodedSpanShape shape);

}  // namespace sonde
