#include "Traceparent.h"

#include <cstring>

namespace sonde {
namespace {

int hexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // W3C trace-context: lower-case hex only
}

bool parseHex(const uint8_t* p, size_t n_bytes, uint8_t* out) {
  bool any_nonzero = false;
  for (size_t i = 0; i < n_bytes; i++) {
    int hi = hexValue(p[2 * i]), lo = hexValue(p[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
    any_nonzero |= out[i] != 0;
  }
  return any_nonzero;
}

bool nameIsTraceparent(const uint8_t* p) {
  static const char kName[] = "traceparent";
  for (size_t i = 0; i < sizeof(kName) - 1; i++) {
    uint8_t c = p[i];
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (c != static_cast<uint8_t>(kName[i])) return false;
  }
  return true;
}

}  // namespace

bool findTraceparent(const uint8_t* bytes, size_t len, TraceparentValue* out) {
  // "00-" + 32 + "-" + 16 + "-" + 2
  constexpr size_t kValueLen = 55;
  for (size_t i = 0; i + 1 < len; i++) {
    // memchr, not a test of every byte: this scan was a twenty-fifth of the
    // reader thread's time at saturation (perf, nginx at 15k req/s).
    const void* lf = std::memchr(bytes + i, '\n', len - 1 - i);
    if (!lf) return false;
    i = size_t(static_cast<const uint8_t*>(lf) - bytes);
    size_t line = i + 1;
    if (line < len && (bytes[line] == '\r' || bytes[line] == '\n')) return false;  // end of head
    if (line + 12 > len || !nameIsTraceparent(bytes + line) || bytes[line + 11] != ':') continue;
    size_t v = line + 12;
    while (v < len && (bytes[v] == ' ' || bytes[v] == '\t')) v++;
    if (v + kValueLen > len) return false;  // truncated by the capture
    const uint8_t* p = bytes + v;
    if (hexValue(p[0]) < 0 || hexValue(p[1]) < 0 || (p[0] == 'f' && p[1] == 'f')) return false;
    if (p[2] != '-' || p[35] != '-' || p[52] != '-') return false;
    TraceparentValue value;
    int flags_hi = hexValue(p[53]), flags_lo = hexValue(p[54]);
    if (!parseHex(p + 3, 16, value.trace_id) || !parseHex(p + 36, 8, value.parent_span_id) ||
        flags_hi < 0 || flags_lo < 0) {
      return false;
    }
    value.trace_flags = static_cast<uint8_t>(flags_hi << 4 | flags_lo);
    *out = value;
    return true;
  }
  return false;
}

}  // namespace sonde
