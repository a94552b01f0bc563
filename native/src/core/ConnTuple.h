// A TCP connection's addresses and ports as the kernel reported them, seen
// from the traced process. Addresses are always 16 bytes (IPv4 arrives
// v4-mapped), so one type serves both families.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../../bpf/shared/events.h"

namespace sonde {

struct ConnTuple {
  std::array<uint8_t, 16> local_addr, remote_addr;
  uint16_t local_port, remote_port;
  bool operator==(const ConnTuple& o) const {
    return local_port == o.local_port && remote_port == o.remote_port && local_addr == o.local_addr &&
           remote_addr == o.remote_addr;
  }
  // The same connection seen from the process at the other end.
  ConnTuple mirrored() const { return {remote_addr, local_addr, remote_port, local_port}; }

  static ConnTuple from(const sonde_tuple& t) {
    ConnTuple e;
    std::memcpy(e.local_addr.data(), t.local_addr, 16);
    std::memcpy(e.remote_addr.data(), t.remote_addr, 16);
    e.local_port = t.local_port;
    e.remote_port = t.remote_port;
    return e;
  }
};

struct ConnTupleHash {
  size_t operator()(const ConnTuple& e) const {
    uint64_t h = 1469598103934665603ULL, w;
    for (int i = 0; i < 16; i += 8) {
      std::memcpy(&w, e.local_addr.data() + i, 8);
      h = mix(h, w);
      std::memcpy(&w, e.remote_addr.data() + i, 8);
      h = mix(h, w);
    }
    return mix(h, (uint64_t(e.local_port) << 16) | e.remote_port);
  }

 private:
  static uint64_t mix(uint64_t h, uint64_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }
};

}  // namespace sonde
