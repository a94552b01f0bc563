#include "Http2Fields.h"

namespace sonde {
namespace {

// parse.ts's validPort: 1 to 5 digits, 1..65535; 0 when not one.
uint64_t validPort(const uint8_t* p, size_t n) {
  if (n == 0 || n > 5) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return 0;
    v = v * 10 + uint64_t(p[i] - '0');
  }
  return v < 65536 ? v : 0;
}

}  // namespace

bool http2Server(Text authority, Text socket_address, uint64_t socket_port, Http2Server& out) {
  out.address = socket_address;
  out.port = socket_port;
  out.authority = Text{};
  if (!authority.present() || authority.n == 0) return true;
  if (std::memchr(authority.p, '@', authority.n) != nullptr || authority.p[0] == '[') return false;
  Text name = authority;
  uint64_t port = 0;
  const uint8_t* colon = static_cast<const uint8_t*>(std::memchr(authority.p, ':', authority.n));
  if (colon != nullptr) {
    size_t at = size_t(colon - authority.p);
    // Two colons or more: the whole authority is the name, without a port.
    if (std::memchr(colon + 1, ':', authority.n - at - 1) == nullptr) {
      name = Text{authority.p, at};
      port = validPort(colon + 1, authority.n - at - 1);
    }
  }
  if (name.n == 0) return true;
  if (name.n > 0xffff) return false;  // EncodedSpanEntry::server_address_bytes
  out.address = name;
  if (port != 0) out.port = port;
  out.authority = authority;
  return true;
}

}  // namespace sonde
