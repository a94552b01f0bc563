// Decides each exchange's trace context, in event order, from what the
// stitchers found (DESIGN.md, "Trace context without touching the
// services"). A server request: an incoming traceparent, else the traced
// client at the other end of the same connection on this host. A client
// call (docs/design-notes.md, "Linking on event loops"): the request its
// thread was serving when it connected the call's connection, else the
// request of the connection its thread last read, else the one server
// request open on its thread; a root where that evidence is ambiguous.
// Protocol-neutral: a stitcher describes a request with RequestHints and
// keeps the TraceContext; the linker keeps pointers to the contexts of open
// server requests until it is told they are over.
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
  // The connection: its fd and generation find what its connect() left.
  int32_t fd = -1;
  uint32_t generation = 0;
  // Client: what the writing thread was serving, from the connection it
  // last read (resolved by ConnTracker from the event's cause).
  CallbackContext cause;
  // That last read was of this very connection: the call is written in the
  // callback of the answer to the call before it on the same connection.
  bool cause_is_this_connection = false;
  // Server: where the connection keeps what its callbacks serve; the linker
  // sets it from this request. nullptr: this request says nothing about
  // that (a stream among several on one connection).
  CallbackContext* callbacks = nullptr;
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
  // `callbacks`: the connection's, updated when it names this request.
  void adoptTraceparent(const TraceparentValue& tp, TraceContext* ctx, CallbackContext* callbacks = nullptr);
  // The server request of `ctx` stops being a candidate parent: its response
  // has started, or it is emitted or dropped. Harmless when it is not one.
  void serverRequestAnswered(uint32_t pid, uint32_t tid, const TraceContext* ctx);
  // The calls made after reads of the connection serve this server request.
  static void servedBy(const TraceContext& server, CallbackContext* callbacks);
  // HTTP/2: the traced client of this server connection has announced
  // stream `stream_id` (its context waits for the server end).
  bool hasPeerContext(const ConnTuple& server_tuple, uint32_t stream_id) const;
  // The response to client call `call` is being read: the code that runs
  // after reads of its connection now resumes the request that made it.
  // Not at the call's write: the read before it may still be running the
  // callback that wrote it, and writing more (Promise.all).
  static void responseResumes(const TraceContext& call, CallbackContext* callbacks);
  // A client call is over (its response ended at `ended_ns`, or it is
  // closed out without one: 0): its parent has one call fewer in flight.
  // Harmless when called twice.
  void clientCallEnded(TraceContext* ctx, uint64_t ended_ns);
  // connect() of (pid, fd, generation) by a thread that was serving `cause`:
  // the first request written on that connection belongs to it, even when
  // it is written a few loop turns later, after other reads.
  void noteConnect(uint32_t pid, int32_t fd, uint32_t generation, const CallbackContext& cause, uint64_t now_ns);
  // A client connection closed: the ids its server end has not taken by now
  // never will be.
  void clientConnectionClosed(const ConnTuple& tuple);
  // Any connection closed or gone: what its connect() left is over too.
  void connectionGone(uint32_t pid, int32_t fd, uint32_t generation);
  void pruneExpired(uint64_t now_ns);

 private:
  struct ThreadKey {
    uint32_t pid, tid;
    bool operator==(const ThreadKey& o) const { return pid == o.pid && tid == o.tid; }
  };
  struct ThreadKeyHash {
    size_t operator()(const ThreadKey& k) const { return (uint64_t(k.pid) << 32) ^ k.tid; }
  };
  struct ConnectKey {
    uint32_t pid;
    int32_t fd;
    uint32_t generation;
    bool operator==(const ConnectKey& o) const { return pid == o.pid && fd == o.fd && generation == o.generation; }
  };
  struct ConnectKeyHash {
    size_t operator()(const ConnectKey& k) const {
      return ((uint64_t(k.pid) << 32) ^ uint32_t(k.fd)) * 0x9e3779b97f4a7c15ull ^ k.generation;
    }
  };
  struct ConnectContext {
    CallbackContext cause;
    uint64_t at_ns;
  };
  struct PeerContext {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    uint32_t stream_id;
    uint64_t created_ns;
  };

  static uint64_t spanKey(const uint8_t* span_id);
  // Another server request open on the thread than `parent_span` has no
  // call in flight and no connect pending: it may have a call queued in a
  // client pool, which the pool writes on whichever connection frees first.
  // As of a call written at `at_ns`.
  bool anotherRequestMayHaveQueued(uint32_t pid, uint32_t tid, const uint8_t* parent_span, uint64_t at_ns) const;
  void countInFlight(const uint8_t* parent_span, int delta, uint64_t ended_ns);
  void eraseConnectContext(std::unordered_map<ConnectKey, ConnectContext, ConnectKeyHash>::iterator it,
                           uint64_t now_ns);

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
  // Connections whose first request is not written yet.
  std::unordered_map<ConnectKey, ConnectContext, ConnectKeyHash> connect_contexts_;
  // Calls in flight (written, response not over) and connects pending, by the
  // span id of the request that made them, and when the last one ended.
  // An entry goes when its request is answered with nothing in flight, or
  // a TTL after its last call: as bounded as the exchanges it counts.
  struct CallsInFlight {
    uint32_t calls = 0;
    uint64_t last_end_ns = 0;
  };
  std::unordered_map<uint64_t, CallsInFlight> calls_in_flight_;
};

}  // namespace sonde
