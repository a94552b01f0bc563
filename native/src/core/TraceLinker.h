// Decides each exchange's trace context, in event order, from what the
// stitchers found (DESIGN.md, "Trace context without touching the
// services"): an incoming traceparent, then the traced client at the other
// end of the same connection on this host, then the one server request
// open on the same thread. Protocol-neutral: a stitcher describes a request
// with RequestHints and keeps the TraceContext; the linker keeps pointers
// to the contexts of open server requests until it is told they are over.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "ConnTuple.h"
#include "Exchange.h"
#include "IdSource.h"
#include "Traceparent.h"
#include "TrackerShared.h"

namespace sonde {

// What a stitcher knows about a request at its start.
struct RequestHints {
  uint32_t pid = 0;
  uint32_t tid = 0;  // thread that read or wrote its first bytes
  uint64_t start_ns = 0;
  const ConnTuple* tuple = nullptr;             // the connection, as the traced process sees it
  const TraceparentValue* traceparent = nullptr;  // found in the request, if any
  // HTTP/2: the stream, which a client and its server on this host share on
  // the mirrored connection. 0: requests pair in order (HTTP/1).
  uint32_t stream_id = 0;
};

class TraceLinker {
 public:
  TraceLinker(const TrackerOptions& options, TrackerCounters& counters, uint64_t id_seed);

  // A request read by a server. `ctx` must stay where it is until
  // serverRequestAnswered() is called with it: it is a candidate parent of
  // the calls made on the same thread meanwhile.
  void linkServerRequest(const RequestHints& hints, TraceContext* ctx);
  // A request written by a client. Its ids wait, under its tuple, for the
  // server end of the connection if that is traced on this host.
  void linkClientRequest(const RequestHints& hints, TraceContext* ctx);
  // A traceparent found in bytes of a server request that came after its
  // start (a head longer than the first capture). The server's own span id
  // stays: only its trace and parent change.
  void adoptTraceparent(const TraceparentValue& tp, TraceContext* ctx);
  // The server request of `ctx` stops being a candidate parent: its response
  // has started, or it is emitted or dropped. Harmless when it is not one.
  void serverRequestAnswered(uint32_t pid, uint32_t tid, const TraceContext* ctx);
  // A client connection closed: the ids its server end has not taken by now
  // never will be.
  void clientConnectionClosed(const ConnTuple& tuple);
  void pruneExpired(uint64_t now_ns);

 private:
  struct ThreadKey {
    uint32_t pid, tid;
    bool operator==(const ThreadKey& o) const { return pid == o.pid && tid == o.tid; }
  };
  struct ThreadKeyHash {
    size_t operator()(const ThreadKey& k) const { return (uint64_t(k.pid) << 32) ^ k.tid; }
  };
  struct PeerContext {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    uint32_t stream_id;
    uint64_t created_ns;
  };

  TrackerOptions options_;
  TrackerCounters& counters_;
  IdSource ids_;
  // Server requests whose request has started and whose response has not,
  // per thread: the candidates to parent an outgoing call on that thread.
  std::unordered_map<ThreadKey, std::vector<const TraceContext*>, ThreadKeyHash> open_server_requests_;
  // Client request contexts by the client's tuple, waiting for the server
  // side of the same connection (same host) to start reading.
  std::unordered_map<ConnTuple, std::deque<PeerContext>, ConnTupleHash> peer_contexts_;
  size_t peer_context_count_ = 0;
};

}  // namespace sonde
