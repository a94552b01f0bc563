// Protocol Buffers wire format, written at a cursor into memory the caller
// sized for the whole message: only what a Span message needs. Lengths are
// written in their shortest varint form, as any encoder does, so that the
// same message gives the same bytes as sonde's JavaScript encoder
// (src/export/otlp/ProtoWriter.ts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sonde {

enum WireType : uint8_t { kWireVarint = 0, kWireFixed64 = 1, kWireLen = 2, kWireFixed32 = 5 };

class ProtoOut {
 public:
  explicit ProtoOut(uint8_t* at) : start_(at), p_(at) {}

  size_t size() const { return size_t(p_ - start_); }

  void varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = uint8_t(v) | 0x80;
      v >>= 7;
    }
    *p_++ = uint8_t(v);
  }
  void tag(uint32_t field, WireType wire) { varint((uint64_t(field) << 3) | wire); }
  void fixed32(uint32_t v) { raw(&v, 4); }  // little-endian hosts only (x86-64, arm64)
  void fixed64(uint64_t v) { raw(&v, 8); }
  void raw(const void* src, size_t n) {
    std::memcpy(p_, src, n);
    p_ += n;
  }
  void lengthDelimited(uint32_t field, const void* src, size_t n) {
    tag(field, kWireLen);
    varint(n);
    raw(src, n);
  }

  // A nested message: one byte is reserved for its length, and the content
  // moves only when the length needs more.
  size_t beginLength() {
    *p_++ = 0;
    return size();
  }
  void endLength(size_t at) {
    size_t length = size() - at;
    if (length < 0x80) {
      start_[at - 1] = uint8_t(length);
      return;
    }
    uint8_t bytes[10];
    size_t n = 0;
    for (uint64_t v = length;; v >>= 7) {
      bytes[n++] = uint8_t(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
      if (v < 0x80) break;
    }
    std::memmove(start_ + at + n - 1, start_ + at, length);
    std::memcpy(start_ + at - 1, bytes, n);
    p_ += n - 1;
  }

 private:
  uint8_t* start_;
  uint8_t* p_;
};

}  // namespace sonde
