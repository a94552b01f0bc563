#include "TraceLinker.h"

#include <algorithm>
#include <cstring>


namespace sonde {
namespace {

// HTTP/1 keeps a few in flight per connection; an HTTP/2 connection may
// carry a hundred concurrent streams or more.
constexpr size_t kMaxPeerContextsPerTuple = 256;

}  // namespace

TraceLinker::TraceLinker(const TrackerOptions& options, TrackerCounters& counters, uint64_t id_seed)
    : options_(options), counters_(counters), ids_(id_seed ? IdSource(id_seed) : IdSource()) {}

void TraceLinker::linkServerRequest(const RequestHints& hints, TraceContext* ctx) {
  auto peer = peer_contexts_.find(hints.tuple->mirrored());
  bool linked = false;
  if (peer != peer_contexts_.end() && hints.stream_id != 0) {
    // HTTP/2: the client's context for the same stream, wherever it is.
    auto& q = peer->second;
    auto it = std::find_if(q.begin(), q.end(), [&](const PeerContext& pc) { return pc.stream_id == hints.stream_id; });
    if (it != q.end()) {
      // No age limit: the stream id says which it is, however slow the
      // server was to answer (a stream's context waits for its server end
      // until the client's connection closes, or the bounds push it out).
      PeerContext pc = *it;
      q.erase(it);
      peer_context_count_--;
      std::memcpy(ctx->trace_id, pc.trace_id, 16);
      std::memcpy(ctx->parent_span_id, pc.span_id, 8);
      ctx->trace_flags = pc.trace_flags;
      ctx->link_source = LinkSource::PeerClient;
      linked = true;
    }
    if (q.empty()) peer_contexts_.erase(peer);
  } else if (peer != peer_contexts_.end()) {
    // Always consume, so the client's FIFO stays aligned with its requests
    // even when a traceparent header takes precedence below.
    while (!peer->second.empty()) {
      PeerContext pc = peer->second.front();
      peer->second.pop_front();
      peer_context_count_--;
      if (hints.start_ns - pc.created_ns > options_.peer_context_ttl_ns && hints.start_ns > pc.created_ns) continue;
      std::memcpy(ctx->trace_id, pc.trace_id, 16);
      std::memcpy(ctx->parent_span_id, pc.span_id, 8);
      ctx->trace_flags = pc.trace_flags;
      ctx->link_source = LinkSource::PeerClient;
      linked = true;
      break;
    }
    if (peer->second.empty()) peer_contexts_.erase(peer);
  }
  if (!linked) ids_.traceId(ctx->trace_id);
  if (hints.traceparent) adoptTraceparent(*hints.traceparent, ctx);
  ids_.spanId(ctx->span_id);
  open_server_requests_[ThreadKey{hints.pid, hints.tid}].push_back(ctx);
  if (hints.callbacks) servedBy(*ctx, hints.callbacks);
}

void TraceLinker::adoptTraceparent(const TraceparentValue& tp, TraceContext* ctx, CallbackContext* callbacks) {
  std::memcpy(ctx->trace_id, tp.trace_id, 16);
  std::memcpy(ctx->parent_span_id, tp.parent_span_id, 8);
  ctx->trace_flags = tp.trace_flags | kTraceFlagFromTraceparent;
  ctx->link_source = LinkSource::TraceparentHeader;
  if (callbacks && callbacks->known && std::memcmp(callbacks->span_id, ctx->span_id, 8) == 0)
    servedBy(*ctx, callbacks);
}

bool TraceLinker::hasPeerContext(const ConnTuple& server_tuple, uint32_t stream_id) const {
  auto peer = peer_contexts_.find(server_tuple.mirrored());
  if (peer == peer_contexts_.end()) return false;
  return std::any_of(peer->second.begin(), peer->second.end(), [&](const PeerContext& pc) { return pc.stream_id == stream_id; });
}

void TraceLinker::responseResumes(const TraceContext& call, CallbackContext* callbacks) {
  callbacks->known = call.link_source != LinkSource::None;
  callbacks->ambiguous = !callbacks->known && call.ambiguous;
  std::memcpy(callbacks->trace_id, call.trace_id, 16);
  std::memcpy(callbacks->span_id, call.parent_span_id, 8);
  callbacks->trace_flags = call.trace_flags;
}

void TraceLinker::servedBy(const TraceContext& server, CallbackContext* callbacks) {
  callbacks->ambiguous = false;
  callbacks->known = true;
  std::memcpy(callbacks->trace_id, server.trace_id, 16);
  std::memcpy(callbacks->span_id, server.span_id, 8);
  callbacks->trace_flags = server.trace_flags;
}

void TraceLinker::noteConnect(uint32_t pid, int32_t fd, uint32_t generation, const CallbackContext& cause,
                              uint64_t now_ns) {
  ConnectKey key{pid, fd, generation};
  auto existing = connect_contexts_.find(key);
  if (existing != connect_contexts_.end()) eraseConnectContext(existing, now_ns);
  if (connect_contexts_.size() >= options_.max_connect_contexts) {
    pruneExpired(now_ns);
    if (connect_contexts_.size() >= options_.max_connect_contexts) {
      counters_.connect_contexts_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  connect_contexts_.emplace(key, ConnectContext{cause, now_ns});
  // A connect pending counts as a call in flight: the request that made it
  // is waiting on it, not on a queue.
  if (cause.known) countInFlight(cause.span_id, +1, 0);
}

void TraceLinker::eraseConnectContext(std::unordered_map<ConnectKey, ConnectContext, ConnectKeyHash>::iterator it,
                                      uint64_t now_ns) {
  if (it->second.cause.known) countInFlight(it->second.cause.span_id, -1, now_ns);
  connect_contexts_.erase(it);
}

void TraceLinker::connectionGone(uint32_t pid, int32_t fd, uint32_t generation) {
  auto it = connect_contexts_.find(ConnectKey{pid, fd, generation});
  if (it != connect_contexts_.end()) eraseConnectContext(it, 0);
}

uint64_t TraceLinker::spanKey(const uint8_t* span_id) {
  uint64_t k;
  std::memcpy(&k, span_id, 8);
  return k;
}

void TraceLinker::countInFlight(const uint8_t* parent_span, int delta, uint64_t ended_ns) {
  uint64_t key = spanKey(parent_span);
  if (delta > 0) {
    calls_in_flight_[key].calls += 1;
    return;
  }
  auto it = calls_in_flight_.find(key);
  if (it == calls_in_flight_.end() || it->second.calls == 0) return;
  it->second.calls -= 1;
  it->second.last_end_ns = std::max(it->second.last_end_ns, ended_ns);
}

void TraceLinker::clientCallEnded(TraceContext* ctx, uint64_t ended_ns) {
  if (!ctx->counted_in_flight) return;
  ctx->counted_in_flight = false;
  countInFlight(ctx->parent_span_id, -1, ended_ns);
}

bool TraceLinker::anotherRequestMayHaveQueued(uint32_t pid, uint32_t tid, const uint8_t* parent_span,
                                              uint64_t at_ns) const {
  auto open = open_server_requests_.find(ThreadKey{pid, tid});
  if (open == open_server_requests_.end()) return false;
  for (const TraceContext* other : open->second) {
    if (std::memcmp(other->span_id, parent_span, 8) == 0) continue;
    auto calls = calls_in_flight_.find(spanKey(other->span_id));
    if (calls == calls_in_flight_.end()) return true;  // never made a call
    // A call whose end the stitcher learnt from the kernel's present state
    // (a quiet response) may have ended after this event: still in flight
    // as far as this event is concerned.
    if (calls->second.calls == 0 && calls->second.last_end_ns < at_ns) return true;
  }
  return false;
}

void TraceLinker::linkClientRequest(const RequestHints& hints, TraceContext* ctx) {
  // Which request made this call, by the strongest evidence there is:
  // - the connect() of its connection, for the first call on it: an event
  //   loop writes that call once connected, turns after the read that made
  //   it, when other reads have come in between;
  // - else the connection the thread last read: on an event loop the code
  //   that runs after a read serves that read's request, and on a thread per
  //   request the thread reads nothing else;
  // - else (the last read was of a connection nobody follows: a database, a
  //   pipe) the server request open on the thread, if it is the only one.
  const CallbackContext* parent = nullptr;
  LinkSource source = LinkSource::None;
  auto connected = connect_contexts_.find(ConnectKey{hints.pid, hints.fd, hints.generation});
  CallbackContext at_connect;
  bool connect_seen = connected != connect_contexts_.end();
  if (connect_seen) {
    at_connect = connected->second.cause;
    eraseConnectContext(connected, hints.start_ns);
    if (at_connect.known) {
      parent = &at_connect;
      source = LinkSource::ConnectTime;
    }
  } else if (hints.cause.known) {
    parent = &hints.cause;
    source = LinkSource::CausingRead;
  }
  bool maybe_queued = false;
  if (source == LinkSource::CausingRead && hints.cause_is_this_connection &&
      anotherRequestMayHaveQueued(hints.pid, hints.tid, parent->span_id, hints.start_ns)) {
    // Written in the callback of the answer that just freed this
    // connection: the continuation of that answer's request, or a call
    // another request queued in a saturated pool (Node's agent at
    // maxSockets), which the pool hands the freed connection first.
    // Nothing in the syscalls tells them apart.
    parent = nullptr;
    maybe_queued = true;
  }
  // After a connect whose cause was unknown (the thread had just read a
  // DNS answer's wake-up, say), the write's own cause is whatever the
  // thread read last: no evidence. Only a lone open request remains.
  auto open = open_server_requests_.find(ThreadKey{hints.pid, hints.tid});
  bool evidence_ambiguous = maybe_queued || (connect_seen ? at_connect.ambiguous : hints.cause.ambiguous);
  if (parent) {
    std::memcpy(ctx->trace_id, parent->trace_id, 16);
    std::memcpy(ctx->parent_span_id, parent->span_id, 8);
    ctx->trace_flags = parent->trace_flags;
    ctx->link_source = source;
    counters_.links_by_cause.fetch_add(1, std::memory_order_relaxed);
  } else if (!evidence_ambiguous && open != open_server_requests_.end() && open->second.size() == 1) {
    const TraceContext* only = open->second.front();
    std::memcpy(ctx->trace_id, only->trace_id, 16);
    std::memcpy(ctx->parent_span_id, only->span_id, 8);
    ctx->trace_flags = only->trace_flags;
    ctx->link_source = LinkSource::EnclosingServer;
  } else {
    // Several requests in flight on the thread and nothing that says which
    // one made this call: a root, rather than a guess.
    if (evidence_ambiguous || open != open_server_requests_.end()) {
      counters_.links_ambiguous.fetch_add(1, std::memory_order_relaxed);
      ctx->ambiguous = true;
    }
    ids_.traceId(ctx->trace_id);
  }
  if (ctx->link_source != LinkSource::None) {
    ctx->counted_in_flight = true;
    countInFlight(ctx->parent_span_id, +1, 0);
  }
  ids_.spanId(ctx->span_id);

  if (peer_context_count_ >= options_.max_peer_contexts) pruneExpired(hints.start_ns);
  if (peer_context_count_ >= options_.max_peer_contexts) return;
  auto& queue = peer_contexts_[*hints.tuple];
  if (queue.size() >= kMaxPeerContextsPerTuple) {
    queue.pop_front();
    peer_context_count_--;
  }
  PeerContext pc;
  std::memcpy(pc.trace_id, ctx->trace_id, 16);
  std::memcpy(pc.span_id, ctx->span_id, 8);
  pc.trace_flags = ctx->trace_flags;
  pc.stream_id = hints.stream_id;
  pc.created_ns = hints.start_ns;
  queue.push_back(pc);
  peer_context_count_++;
}

void TraceLinker::pruneExpired(uint64_t now_ns) {
  for (auto it = calls_in_flight_.begin(); it != calls_in_flight_.end();) {
    bool done = it->second.calls == 0 && now_ns > it->second.last_end_ns &&
                now_ns - it->second.last_end_ns > options_.peer_context_ttl_ns;
    it = done ? calls_in_flight_.erase(it) : std::next(it);
  }
  // A connection never written on within the TTL (a pool's spare): its
  // first request, if it ever comes, is not the connecting request's.
  for (auto it = connect_contexts_.begin(); it != connect_contexts_.end();) {
    bool old = now_ns > it->second.at_ns && now_ns - it->second.at_ns > options_.peer_context_ttl_ns;
    if (!old) {
      ++it;
      continue;
    }
    auto next = std::next(it);
    eraseConnectContext(it, 0);
    it = next;
  }
  for (auto it = peer_contexts_.begin(); it != peer_contexts_.end();) {
    auto& q = it->second;
    // HTTP/1 contexts (stream 0) are taken in order, so an old one at the
    // front is one its server end will never take; HTTP/2 contexts are
    // taken by stream id and wait for their server end (see above).
    while (!q.empty() && q.front().stream_id == 0 && now_ns > q.front().created_ns &&
           now_ns - q.front().created_ns > options_.peer_context_ttl_ns) {
      q.pop_front();
      peer_context_count_--;
    }
    it = q.empty() ? peer_contexts_.erase(it) : std::next(it);
  }
}

void TraceLinker::serverRequestAnswered(uint32_t pid, uint32_t tid, const TraceContext* ctx) {
  auto calls = calls_in_flight_.find(spanKey(ctx->span_id));
  if (calls != calls_in_flight_.end() && calls->second.calls == 0) calls_in_flight_.erase(calls);
  auto it = open_server_requests_.find(ThreadKey{pid, tid});
  if (it == open_server_requests_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), ctx), v.end());
  if (v.empty()) open_server_requests_.erase(it);
}

void TraceLinker::clientConnectionClosed(const ConnTuple& tuple) {
  auto it = peer_contexts_.find(tuple);
  if (it == peer_contexts_.end()) return;
  peer_context_count_ -= it->second.size();
  peer_contexts_.erase(it);
}

}  // namespace sonde
