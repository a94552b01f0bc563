#include "ListeningSockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace sonde {
namespace {

constexpr uint32_t kTcpListenState = 10;  // TCP_LISTEN in the kernel's enum of TCP states

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool dumpFamily(int fd, uint8_t family, uint32_t seq, std::vector<ListeningSocket>& out, std::string* error) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.header.nlmsg_seq = seq;
  message.request.sdiag_family = family;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << kTcpListenState;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    *error = errnoText("send inet_diag request");
    return false;
  }
  alignas(nlmsghdr) char buffer[32 * 1024];
  for (;;) {
    ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
    if (received < 0) {
      if (errno == EINTR) continue;
      *error = errnoText("read inet_diag answer");
      return false;
    }
    if (received == 0) {
      *error = "inet_diag answer ended early";
      return false;
    }
    int left = int(received);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        *error = std::string("inet_diag: ") + std::strerror(e->error < 0 ? -e->error : e->error);
        return false;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      const auto* socket = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      out.push_back({socket->idiag_inode, ntohs(socket->id.idiag_sport)});
    }
  }
}

bool dumpOwnNamespace(std::vector<ListeningSocket>& out, std::string* error) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    *error = errnoText("open a NETLINK_SOCK_DIAG socket");
    return false;
  }
  bool ok = dumpFamily(fd, AF_INET, 1, out, error) && dumpFamily(fd, AF_INET6, 2, out, error);
  close(fd);
  return ok;
}

}  // namespace

bool listeningTcpSockets(const std::string& netnsPath, std::vector<ListeningSocket>& out, std::string* error) {
  if (netnsPath.empty()) return dumpOwnNamespace(out, error);
  // A netlink socket answers for the namespace it was opened in, and
  // setns(CLONE_NEWNET) moves only the calling thread: a thread of its own
  // does it, so no thread of sonde's ever leaves sonde's namespace.
  bool ok = false;
  std::thread asker([&] {
    int ns = open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
      *error = errnoText(("open " + netnsPath).c_str());
      return;
    }
    if (setns(ns, CLONE_NEWNET) != 0) {
      *error = errnoText(("enter " + netnsPath).c_str());
      close(ns);
      return;
    }
    close(ns);
    ok = dumpOwnNamespace(out, error);
  });
  asker.join();
  return ok;
}

}  // namespace sonde
