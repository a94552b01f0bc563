// Trace and span ids. W3C requires them random and non-zero; they need not
// be cryptographic, and a per-tracker xoshiro256** seeded from the kernel's
// entropy pool is fast enough to call twice per exchange.
#pragma once

#include <sys/random.h>

#include <cstdint>
#include <cstring>
#include <ctime>

namespace sonde {

class IdSource {
 public:
  IdSource() {
    if (getrandom(state_, sizeof(state_), 0) != static_cast<ssize_t>(sizeof(state_))) {
      // Without entropy fall back on addresses and time: ids stay unique
      // within this process, which is what linking needs.
      uint64_t seed = reinterpret_cast<uintptr_t>(this) ^ static_cast<uint64_t>(time(nullptr));
      for (auto& s : state_) s = (seed = seed * 6364136223846793005ULL + 1442695040888963407ULL);
    }
  }
  explicit IdSource(uint64_t seed) {
    for (auto& s : state_) s = (seed = seed * 6364136223846793005ULL + 1442695040888963407ULL) | 1;
  }

  void spanId(uint8_t out[8]) {
    uint64_t v;
    do v = next(); while (v == 0);
    std::memcpy(out, &v, 8);
  }
  void traceId(uint8_t out[16]) {
    uint64_t hi, lo;
    do { hi = next(); lo = next(); } while (hi == 0 && lo == 0);
    std::memcpy(out, &hi, 8);
    std::memcpy(out + 8, &lo, 8);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t result = rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  uint64_t state_[4];
};

}  // namespace sonde
