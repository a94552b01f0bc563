#include "SpanWriter.h"

#include <cstdio>
#include <cstdlib>

namespace sonde {
namespace {

constexpr uint32_t kSpanKindServer = 2;  // OTLP's SpanKind: the API's + 1
constexpr uint32_t kSpanKindClient = 3;
constexpr uint32_t kStatusUnset = 0;
constexpr uint32_t kStatusError = 2;
constexpr uint32_t kFlagsHasIsRemote = 0x100;
constexpr uint32_t kFlagsIsRemote = 0x200;

bool allZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

// Grows `out` by the entry's header and `bound` bytes; returns where the entry starts.
size_t grow(EncodedBytes& out, size_t bound) {
  size_t at = out.size();
  out.resize(at + sizeof(EncodedSpanEntry) + bound);
  return at;
}

}  // namespace

bool equalsLowerBytes(const uint8_t* p, const char* lower, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c >= 'A' && c <= 'Z') c += 32;
    if (c != uint8_t(lower[i])) return false;
  }
  return true;
}

size_t formatAddress(const uint8_t* a, char* out) {
  bool mapped = a[10] == 0xff && a[11] == 0xff;
  for (int i = 0; i < 10 && mapped; i++) mapped = a[i] == 0;
  if (mapped) {
    size_t len = 0;
    for (int i = 12; i < 16; i++) {
      if (i > 12) out[len++] = '.';
      unsigned v = a[i];
      if (v >= 100) out[len++] = char('0' + v / 100);
      if (v >= 10) out[len++] = char('0' + v / 10 % 10);
      out[len++] = char('0' + v % 10);
    }
    return len;
  }
  uint16_t g[8];
  for (int i = 0; i < 8; i++) g[i] = uint16_t(a[2 * i] << 8 | a[2 * i + 1]);
  int best_start = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      i++;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) j++;
    if (j - i > best_len) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  size_t len = 0;
  for (int i = 0; i < 8; i++) {
    if (best_start >= 0 && i == best_start) {
      len += size_t(std::snprintf(out + len, 48 - len, "::"));
      i += best_len - 1;
      continue;
    }
    bool after_gap = best_start >= 0 && i == best_start + best_len;
    if (i > 0 && !after_gap) out[len++] = ':';
    len += size_t(std::snprintf(out + len, 48 - len, "%x", g[i]));
  }
  return len;
}

size_t decimal(uint64_t v, char* out) {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = char('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++) out[i] = digits[n - 1 - i];
  return n;
}

SpanEntryWriter::SpanEntryWriter(EncodedBytes& out, uint32_t record_offset, size_t bound)
    : out_(out), bound_(bound), entry_at_(grow(out, bound)), span_at_(entry_at_ + sizeof(EncodedSpanEntry)), w_(out.data() + span_at_) {
  entry_.record_offset = record_offset;
}

void SpanEntryWriter::head(const ExchangeRecord& x, bool server, const void* name, size_t name_n, uint64_t end_ns) {
  w_.lengthDelimited(1, x.trace_id, 16);
  w_.lengthDelimited(2, x.span_id, 8);
  has_parent_ = !allZero(x.parent_span_id, 8);
  if (has_parent_) w_.lengthDelimited(4, x.parent_span_id, 8);
  w_.lengthDelimited(5, name, name_n);
  entry_.name_at = uint32_t(w_.size() - name_n);
  entry_.name_bytes = uint16_t(name_n);
  w_.tag(6, kWireVarint);
  w_.varint(server ? kSpanKindServer : kSpanKindClient);
  w_.tag(7, kWireFixed64);
  entry_.start_time_at = uint32_t(w_.size());
  w_.fixed64(x.request_start_ns);
  w_.tag(8, kWireFixed64);
  entry_.end_time_at = uint32_t(w_.size());
  w_.fixed64(end_ns);
  entry_.end_ns = end_ns;
}

void SpanEntryWriter::server(Text address, uint64_t port) {
  stringAttribute(w_, "server.address", address);
  entry_.server_address_at = uint32_t(w_.size() - address.n);
  entry_.server_address_bytes = uint16_t(address.n);
  entry_.server_port = uint16_t(port);
  intAttribute(w_, "server.port", port);
}

void SpanEntryWriter::tail(const ExchangeRecord& x, bool failed, Text message) {
  w_.tag(10, kWireVarint);
  w_.varint(0);
  w_.tag(12, kWireVarint);
  w_.varint(0);
  w_.tag(14, kWireVarint);
  w_.varint(0);
  w_.tag(15, kWireLen);
  size_t status_at = w_.beginLength();
  if (message.n > 0) w_.lengthDelimited(2, message.p, message.n);
  w_.tag(3, kWireVarint);
  w_.varint(failed ? kStatusError : kStatusUnset);
  w_.endLength(status_at);
  w_.tag(16, kWireFixed32);
  w_.fixed32((x.trace_flags & 1) | kFlagsHasIsRemote | (has_parent_ ? kFlagsIsRemote : 0));
}

void SpanEntryWriter::finish() {
  if (w_.size() > bound_) {
    std::fprintf(stderr, "sonde: an encoded span took %zu bytes, over its room of %zu\n", w_.size(), bound_);
    std::abort();
  }
  out_.resize(span_at_ + w_.size());
  entry_.entry_bytes = uint32_t(out_.size() - entry_at_);
  entry_.span_bytes = uint32_t(w_.size());
  std::memcpy(out_.data() + entry_at_, &entry_, sizeof entry_);
}

void finishHttpSpan(SpanEntryWriter& entry, const ExchangeRecord& x, bool server, int status, uint8_t method, uint8_t http_minor,
                    EncodedSpanShape shape) {
  ProtoOut& w = entry.w();
  intAttribute(w, "http.response.status_code", uint64_t(status));
  bool failed = status >= 500 || (!server && status >= 400);
  if (failed) {
    char code[20];
    stringAttribute(w, "error.type", code, decimal(uint64_t(status), code));
  }
  entry.tail(x, failed);
  EncodedSpanEntry& e = entry.entry();
  e.status_code = uint16_t(status);
  e.method = method;
  e.http_minor = http_minor;
  e.shape = uint8_t(shape);
  entry.finish();
}

}  // namespace sonde
