// One entry per live connection of a traced process, keyed by (pid, fd,
// generation), with least-recently-active eviction at a fixed bound. What
// happens to a connection's exchanges when it leaves is the caller's
// (Departure); the table only keeps identity, role and order.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../../../bpf/shared/events.h"
#include "ConnTuple.h"
#include "Exchange.h"
#include "ExchangeRecord.h"
#include "TrackerShared.h"

namespace sonde {

class Stitcher;

// Per-connection state of the stitcher that follows the connection.
struct StitcherState {
  virtual ~StitcherState() = default;
};

struct ConnKey {
  uint32_t pid;
  int32_t fd;
  bool operator==(const ConnKey& o) const { return pid == o.pid && fd == o.fd; }
};
struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const { return (uint64_t(k.pid) << 32) ^ uint32_t(k.fd); }
};

struct Connection {
  ConnKey key;
  uint32_t generation = 0;
  uint8_t role = 0;  // ExchangeRole, 0 until known
  bool preexisting = false;  // opened before sonde saw its accept or connect
  uint8_t source = SONDE_SOURCE_SOCKET;  // of its latest message start: TLS once its plaintext comes from uprobes
  // Not followed any more: sonde's own, or a protocol no stitcher follows.
  bool ignored = false;
  uint16_t family = 0;
  char comm[16] = {};
  ConnTuple tuple{};
  uint32_t last_seq = 0;  // msg_seq of the latest message start
  // Set by the linker as requests start on the connection: what a thread
  // that last read this connection is serving when it makes a call.
  CallbackContext callbacks;
  uint64_t last_event_ns = 0;
  // Chosen by the first message whose protocol is known; then owns `state`.
  Stitcher* stitcher = nullptr;
  std::unique_ptr<StitcherState> state;
  std::list<ConnKey>::iterator lru_pos;

  bool isServer() const { return role == uint8_t(ExchangeRole::Server); }
};

class ConnectionTable {
 public:
  enum class Departure {
    FdReused,  // a new connection appeared on its fd: its close was missed
    Evicted,   // the least recently active when the table was full
  };
  // Called while the connection is still in the table, before it is erased.
  using DepartureHandler = std::function<void(Connection&, Departure)>;

  ConnectionTable(const TrackerOptions& options, TrackerCounters& counters, DepartureHandler on_departure);
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // The connection this event belongs to, opened if it is new.
  Connection* findOrOpen(const sonde_event_header& hdr, const sonde_tuple& tuple);
  // nullptr when the fd now holds another connection (or none).
  Connection* find(uint32_t pid, int32_t fd, uint32_t generation);
  void touch(Connection* c, uint64_t now_ns);
  // Frees the connection and its stitcher state. Whenever this is used, the
  // stitcher must have released its exchanges from the linker beforehand:
  // the linker holds pointers to their trace contexts.
  void erase(Connection* c);

  // A connection of a traced process with this tuple (as that process sees
  // it) is in the table: e.g. whether a server's peer is traced here.
  bool holdsTuple(const ConnTuple& tuple) const { return by_tuple_.count(tuple) != 0; }

  // sonde's own outgoing connection: its server end, if traced on this host,
  // is ignored from its first event so sonde never traces its own exports.
  void addSelfTuple(const sonde_tuple& tuple);

  // Snapshots: the callers erase connections while walking them.
  std::vector<Connection*> all() const;
  std::vector<Connection*> ofProcess(uint32_t pid) const;
  // Walks every connection; `f` must not erase any.
  template <class F>
  void forEach(F&& f) const {
    for (auto& entry : conns_) f(*entry.second);
  }

 private:
  TrackerOptions options_;
  TrackerCounters& counters_;
  DepartureHandler on_departure_;
  std::unordered_map<ConnKey, std::unique_ptr<Connection>, ConnKeyHash> conns_;
  std::list<ConnKey> lru_;  // least recently active first
  std::unordered_set<ConnTuple, ConnTupleHash> self_tuples_;
  std::unordered_map<ConnTuple, ConnKey, ConnTupleHash> by_tuple_;  // as many as conns_
};

}  // namespace sonde
