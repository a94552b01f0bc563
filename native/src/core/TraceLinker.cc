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
}

void TraceLinker::adoptTraceparent(const TraceparentValue& tp, TraceContext* ctx) {
  std::memcpy(ctx->trace_id, tp.trace_id, 16);
  std::memcpy(ctx->parent_span_id, tp.parent_span_id, 8);
  ctx->trace_flags = tp.trace_flags;
  ctx->link_source = LinkSource::TraceparentHeader;
}

void TraceLinker::linkClientRequest(const RequestHints& hints, TraceContext* ctx) {
  auto open = open_server_requests_.find(ThreadKey{hints.pid, hints.tid});
  if (open != open_server_requests_.end() && open->second.size() == 1) {
    const TraceContext* parent = open->second.front();
    std::memcpy(ctx->trace_id, parent->trace_id, 16);
    std::memcpy(ctx->parent_span_id, parent->span_id, 8);
    ctx->trace_flags = parent->trace_flags;
    ctx->link_source = LinkSource::EnclosingServer;
  } else {
    // Several requests in flight on one thread (an event loop): which one
    // made this call is not knowable from syscalls, so none is guessed.
    if (open != open_server_requests_.end()) counters_.links_ambiguous.fetch_add(1, std::memory_order_relaxed);
    ids_.traceId(ctx->trace_id);
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
