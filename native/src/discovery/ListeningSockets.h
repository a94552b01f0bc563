#pragma once
// The TCP sockets that listen in a network namespace, asked of the kernel
// over NETLINK_SOCK_DIAG (inet_diag), for discovery's --open-port.
//
// /proc/net/tcp gives the same list but the kernel builds it by walking
// every bucket of the established-connections hash, which is sized by the
// host's memory (1.2 ms a read on these 24 GiB VMs with a few sockets
// open, and tcp6 walks it again). Asked for the LISTEN state alone,
// inet_diag walks only the listening hash and skips the other.
#include <cstdint>
#include <string>
#include <vector>

namespace sonde {

struct ListeningSocket {
  uint32_t inode;
  uint16_t port;
};

// IPv4 and IPv6 listeners of the network namespace at netnsPath (a
// /proc/PID/ns/net file), or of the caller's own when it is empty. On
// failure returns false and says why in *error.
bool listeningTcpSockets(const std::string& netnsPath, std::vector<ListeningSocket>& out, std::string* error);

}  // namespace sonde
