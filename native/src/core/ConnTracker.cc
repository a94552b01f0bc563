#include "ConnTracker.h"

#include <algorithm>
#include <cstring>

#include "Traceparent.h"

namespace sonde {
namespace {

constexpr uint64_t kTimeoutScanEveryNs = 1'000'000'000;
// A quiet response whose kernel state cannot be read any more is closed out
// at its first chunk after this many idle periods.
constexpr uint64_t kEstimateAfterIdlePeriods = 10;
constexpr size_t kMaxPeerContextsPerTuple = 64;

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

Endpoint4 endpointOf(const sonde_tuple& t) {
  Endpoint4 e;
  std::memcpy(e.local_addr.data(), t.local_addr, 16);
  std::memcpy(e.remote_addr.data(), t.remote_addr, 16);
  e.local_port = t.local_port;
  e.remote_port = t.remote_port;
  return e;
}

// Request heads are followed up to the kernel's bound; a group of
// pipelined requests keeps at most this much besides.
constexpr size_t kMaxRequestGroupBytes = SONDE_MAX_HEAD_BYTES + SONDE_MAX_PAYLOAD_BYTES;

bool requestIsHead(const std::string& request) { return request.compare(0, 5, "HEAD ") == 0; }

}  // namespace

size_t Endpoint4Hash::operator()(const Endpoint4& e) const {
  uint64_t h = 1469598103934665603ULL, w;
  for (int i = 0; i < 16; i += 8) {
    std::memcpy(&w, e.local_addr.data() + i, 8);
    h = mix(h, w);
    std::memcpy(&w, e.remote_addr.data() + i, 8);
    h = mix(h, w);
  }
  return mix(h, (uint64_t(e.local_port) << 16) | e.remote_port);
}

ConnTracker::ConnTracker(const TrackerOptions& options, CurrentMessageLookup lookup, uint64_t id_seed)
    : options_(options), lookup_(std::move(lookup)), ids_(id_seed ? IdSource(id_seed) : IdSource()) {}

ConnTracker::~ConnTracker() = default;

void ConnTracker::takeOutput(std::vector<uint8_t>* out) {
  out->swap(output_);
  output_.clear();
}

void ConnTracker::onEvent(const uint8_t* data, size_t len) {
  counters_.events_read.fetch_add(1, std::memory_order_relaxed);
  if (len < sizeof(sonde_event_header)) {
    counters_.events_malformed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  switch (data[0]) {
    case SONDE_EV_MSG_START: {
      if (len < SONDE_MSG_START_HEADER_BYTES) break;
      sonde_msg_start_event ev;
      std::memcpy(&ev, data, SONDE_MSG_START_HEADER_BYTES);
      if (ev.payload_bytes > len - SONDE_MSG_START_HEADER_BYTES || ev.payload_bytes > SONDE_MAX_PAYLOAD_BYTES) break;
      onMessageStart(ev, data + SONDE_MSG_START_HEADER_BYTES, ev.payload_bytes);
      return;
    }
    case SONDE_EV_MSG_CONTINUE: {
      if (len < SONDE_MSG_CONTINUE_HEADER_BYTES) break;
      sonde_msg_continue_event ev;
      std::memcpy(&ev, data, SONDE_MSG_CONTINUE_HEADER_BYTES);
      if (ev.payload_bytes > len - SONDE_MSG_CONTINUE_HEADER_BYTES || ev.payload_bytes > SONDE_MAX_PAYLOAD_BYTES) break;
      onMessageContinue(ev, data + SONDE_MSG_CONTINUE_HEADER_BYTES, ev.payload_bytes);
      return;
    }
    case SONDE_EV_CLOSE: {
      if (len < sizeof(sonde_close_event)) break;
      sonde_close_event ev;
      std::memcpy(&ev, data, sizeof(ev));
      onClose(ev);
      return;
    }
    case SONDE_EV_SELF_CONNECT: {
      if (len < sizeof(sonde_self_connect_event)) break;
      sonde_self_connect_event ev;
      std::memcpy(&ev, data, sizeof(ev));
      onSelfConnect(ev);
      return;
    }
    case SONDE_EV_PROCESS_EXIT: {
      sonde_event_header hdr;
      std::memcpy(&hdr, data, sizeof(hdr));
      onProcessExit(hdr.pid, hdr.timestamp_ns);
      return;
    }
  }
  counters_.events_malformed.fetch_add(1, std::memory_order_relaxed);
}

ConnTracker::Conn* ConnTracker::findOrCreate(const sonde_event_header& hdr, const sonde_tuple& tuple) {
  ConnKey key{hdr.pid, hdr.fd};
  auto it = conns_.find(key);
  if (it != conns_.end()) {
    if (it->second->generation == hdr.generation) return it->second.get();
    // The fd was reused without us seeing its close: the old connection is over.
    closeConn(it->second.get(), kClosedBeforeResponse);
  }
  if (conns_.size() >= options_.max_connections && !lru_.empty()) {
    auto victim = conns_.find(lru_.front());
    counters_.connections_evicted.fetch_add(1, std::memory_order_relaxed);
    for (auto& x : victim->second->exchanges) {
      leaveEnclosingCandidates(x.get());
      counters_.exchanges_abandoned.fetch_add(1, std::memory_order_relaxed);
    }
    victim->second->exchanges.clear();
    eraseConn(victim->second.get());
  }
  auto conn = std::make_unique<Conn>();
  Conn* c = conn.get();
  c->key = key;
  c->generation = hdr.generation;
  c->family = tuple.family;
  c->tuple = endpointOf(tuple);
  switch (hdr.role_hint) {
    case SONDE_ROLE_SERVER: c->role = uint8_t(ExchangeRole::Server); break;
    case SONDE_ROLE_CLIENT: c->role = uint8_t(ExchangeRole::Client); break;
    default: c->preexisting = true;
  }
  if (self_tuples_.count(c->tuple.mirrored())) {
    c->ignored = true;
    counters_.self_connections_ignored.fetch_add(1, std::memory_order_relaxed);
  }
  lru_.push_back(key);
  c->lru_pos = std::prev(lru_.end());
  conns_.emplace(key, std::move(conn));
  counters_.connections_opened.fetch_add(1, std::memory_order_relaxed);
  counters_.connections_tracked.store(conns_.size(), std::memory_order_relaxed);
  return c;
}

void ConnTracker::touch(Conn* c, uint64_t now_ns) {
  c->last_event_ns = now_ns;
  lru_.splice(lru_.end(), lru_, c->lru_pos);
}

void ConnTracker::applySummary(Conn* c, const sonde_prev_message& summary) {
  if (!c->current || summary.seq != c->last_seq) return;
  c->current->last_ns = std::max<uint64_t>(c->current->last_ns, summary.last_chunk_ns);
  if (summary.total_bytes > c->current->group_offset) c->current->bytes += summary.total_bytes - c->current->group_offset;
  if (c->current_is_response) {
    Exchange* x = c->current_exchange;
    c->current = nullptr;
    emit(c, x);
  }
}

void ConnTracker::onMessageStart(const sonde_msg_start_event& ev, const uint8_t* payload, uint32_t len) {
  Conn* c = findOrCreate(ev.hdr, ev.tuple);
  touch(c, ev.hdr.timestamp_ns);
  std::memcpy(c->comm, ev.comm, sizeof(c->comm));
  if (c->ignored) return;

  if (c->last_seq != 0 && ev.hdr.msg_seq != c->last_seq + 1) {
    // A boundary was lost (ring buffer full): what is in flight on this
    // connection can no longer be paired with certainty.
    counters_.messages_lost.fetch_add(ev.hdr.msg_seq - c->last_seq - 1, std::memory_order_relaxed);
    while (!c->exchanges.empty()) dropExchange(c, c->exchanges.front().get());
    c->current = nullptr;
  } else {
    applySummary(c, ev.prev);
  }
  c->last_seq = ev.hdr.msg_seq;
  c->current = nullptr;
  c->request_group.clear();
  c->cut_at = 0;
  if (c->upgraded) {
    // After 101 Switching Protocols (WebSocket, h2c): the upgrade exchange
    // has just been closed out above; the rest is not HTTP/1.
    c->ignored = true;
    return;
  }

  if (ev.hdr.msg_class == SONDE_CLASS_HTTP2_PREFACE) {
    // HTTP/2 needs whole frames and HPACK state: not followed yet.
    c->ignored = true;
    while (!c->exchanges.empty()) dropExchange(c, c->exchanges.front().get());
    return;
  }
  if (c->role == 0) {
    if (ev.hdr.msg_class == SONDE_CLASS_HTTP1_REQUEST)
      c->role = uint8_t(ev.hdr.direction == SONDE_DIR_INGRESS ? ExchangeRole::Server : ExchangeRole::Client);
    else if (ev.hdr.msg_class == SONDE_CLASS_HTTP1_RESPONSE)
      c->role = uint8_t(ev.hdr.direction == SONDE_DIR_INGRESS ? ExchangeRole::Client : ExchangeRole::Server);
    else
      return;
  }
  const uint8_t request_direction =
      c->role == uint8_t(ExchangeRole::Server) ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS;

  if (ev.hdr.direction == request_direction) {
    if (ev.hdr.msg_class == SONDE_CLASS_HTTP1_REQUEST) {
      c->request_group.assign(reinterpret_cast<const char*>(payload), len);
      c->group_start_ns = ev.hdr.timestamp_ns;
      c->group_tid = ev.hdr.tid;
      c->group_seq = ev.hdr.msg_seq;
      Exchange* x = newRequest(c, ev.hdr.timestamp_ns, ev.hdr.tid, ev.hdr.msg_seq);
      c->current = &x->request;
      c->current_exchange = x;
      c->current_is_response = false;
      cutRequests(c);
    } else if (!c->exchanges.empty() && !c->exchanges.back()->has_response) {
      // A body sent after an interim response (Expect: 100-continue).
      c->current = &c->exchanges.back()->request;
      c->current_exchange = c->exchanges.back().get();
      c->current_is_response = false;
      c->current->group_offset = 0;
    }
    return;
  }
  if (ev.hdr.msg_class == SONDE_CLASS_HTTP1_RESPONSE) startResponses(c, ev, payload, len);
}

void ConnTracker::onMessageContinue(const sonde_msg_continue_event& ev, const uint8_t* payload, uint32_t len) {
  auto it = conns_.find(ConnKey{ev.hdr.pid, ev.hdr.fd});
  if (it == conns_.end()) return;
  Conn* c = it->second.get();
  if (c->ignored || c->generation != ev.hdr.generation || ev.hdr.msg_seq != c->group_seq ||
      ev.hdr.msg_seq != c->last_seq || c->current_is_response || !c->current_exchange)
    return;
  touch(c, ev.hdr.timestamp_ns);
  size_t room = kMaxRequestGroupBytes - std::min(kMaxRequestGroupBytes, c->request_group.size());
  c->request_group.append(reinterpret_cast<const char*>(payload), std::min<size_t>(len, room));
  cutRequests(c);
}

ConnTracker::Exchange* ConnTracker::newRequest(Conn* c, uint64_t start_ns, uint32_t tid, uint32_t seq) {
  if (c->exchanges.size() >= options_.max_pending_per_connection) dropExchange(c, c->exchanges.front().get());
  auto x = std::make_unique<Exchange>();
  x->conn = c;
  x->request.seq = seq;
  x->request.tid = tid;
  x->request.start_ns = x->request.last_ns = start_ns;
  if (c->preexisting) x->flags |= kPreexistingConnection;
  Exchange* raw = x.get();
  c->exchanges.push_back(std::move(x));
  return raw;
}

void ConnTracker::cutRequests(Conn* c) {
  // The exchange whose head begins at cut_at is the newest one: it was
  // opened when its first bytes were seen.
  Exchange* x = c->current_exchange;
  for (;;) {
    const uint8_t* at = reinterpret_cast<const uint8_t*>(c->request_group.data()) + c->cut_at;
    size_t left = c->request_group.size() - c->cut_at;
    Http1Head head = parseRequestHead(at, left);
    x->request.payload.assign(reinterpret_cast<const char*>(at), head.complete ? head.head_bytes : left);
    if (!x->context_assigned) {
      // Before any outgoing call of this request can be seen: the kernel
      // reports the head's continuations before the process acts on them.
      if (c->role == uint8_t(ExchangeRole::Server))
        assignServerContext(c, x);
      else
        assignClientContext(c, x, x->request.tid);
      x->context_assigned = true;
    } else if (c->role == uint8_t(ExchangeRole::Server) && head.complete) {
      adoptTraceparent(x);
    }
    if (!head.complete) return;
    uint64_t size = framedMessageBytes(head, at, left);
    if (size == 0 || size >= left || !looksLikeRequestStart(at + size, left - size)) return;
    // Another request follows in the same chunk (pipelining): this one is
    // whole; the next starts where it ends, at the same moment.
    x->request.bytes = size;
    size_t next_offset = c->cut_at + size;
    Exchange* next = newRequest(c, c->group_start_ns, c->group_tid, c->group_seq);
    next->request.group_offset = x->request.group_offset + size;
    c->cut_at = next_offset;
    c->current = &next->request;
    c->current_exchange = next;
    x = next;
  }
}

void ConnTracker::startResponses(Conn* c, const sonde_msg_start_event& ev, const uint8_t* payload, uint32_t len) {
  uint32_t offset = 0;
  while (offset < len) {
    const uint8_t* at = payload + offset;
    uint32_t left = len - offset;
    if (!looksLikeResponseStart(at, left)) return;
    Exchange* x = nullptr;
    for (auto& e : c->exchanges) {
      if (!e->has_response) {
        x = e.get();
        break;
      }
    }
    Http1Head head = parseResponseHead(at, left, x && requestIsHead(x->request.payload));
    bool interim = head.status >= 100 && head.status < 200 && head.status != 101;
    uint64_t size = framedMessageBytes(head, at, left);
    bool another_follows = size > 0 && size < left && looksLikeResponseStart(at + size, left - size);
    if (interim) {
      // 100 Continue and 103 Early Hints precede the real response.
      if (!another_follows) return;
      offset += uint32_t(size);
      continue;
    }
    if (!x) {
      // Typically the response to a request sent before sonde started.
      counters_.responses_without_request.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    x->has_response = true;
    x->response.seq = ev.hdr.msg_seq;
    x->response.tid = ev.hdr.tid;
    x->response.start_ns = x->response.last_ns = ev.hdr.timestamp_ns;
    x->response.group_offset = offset;
    x->response.payload.assign(reinterpret_cast<const char*>(at), head.complete ? head.head_bytes : left);
    x->response_head = head;
    leaveEnclosingCandidates(x);
    if (head.status == 101) c->upgraded = true;
    if (!another_follows) {
      c->current = &x->response;
      c->current_exchange = x;
      c->current_is_response = true;
      return;
    }
    // Whole inside this chunk, and the next response follows it.
    x->response.bytes = size;
    offset += uint32_t(size);
    emit(c, x);
  }
}

void ConnTracker::assignServerContext(Conn* c, Exchange* x) {
  auto peer = peer_contexts_.find(c->tuple.mirrored());
  bool linked = false;
  if (peer != peer_contexts_.end()) {
    // Always consume, so the client's FIFO stays aligned with its requests
    // even when a traceparent header takes precedence below.
    while (!peer->second.empty()) {
      PeerContext ctx = peer->second.front();
      peer->second.pop_front();
      peer_context_count_--;
      if (x->request.start_ns - ctx.created_ns > options_.peer_context_ttl_ns &&
          x->request.start_ns > ctx.created_ns)
        continue;
      std::memcpy(x->trace_id, ctx.trace_id, 16);
      std::memcpy(x->parent_span_id, ctx.span_id, 8);
      x->trace_flags = ctx.trace_flags;
      x->link_source = LinkSource::PeerClient;
      linked = true;
      break;
    }
    if (peer->second.empty()) peer_contexts_.erase(peer);
  }
  if (!linked) ids_.traceId(x->trace_id);
  adoptTraceparent(x);
  ids_.spanId(x->span_id);
  open_server_requests_[ThreadKey{c->key.pid, x->request.tid}].push_back(x);
}

void ConnTracker::adoptTraceparent(Exchange* x) {
  if (x->link_source == LinkSource::TraceparentHeader) return;
  TraceparentValue tp;
  if (!findTraceparent(reinterpret_cast<const uint8_t*>(x->request.payload.data()), x->request.payload.size(), &tp))
    return;
  std::memcpy(x->trace_id, tp.trace_id, 16);
  std::memcpy(x->parent_span_id, tp.parent_span_id, 8);
  x->trace_flags = tp.trace_flags;
  x->link_source = LinkSource::TraceparentHeader;
}

void ConnTracker::assignClientContext(Conn* c, Exchange* x, uint32_t tid) {
  auto open = open_server_requests_.find(ThreadKey{c->key.pid, tid});
  if (open != open_server_requests_.end() && open->second.size() == 1) {
    Exchange* parent = open->second.front();
    std::memcpy(x->trace_id, parent->trace_id, 16);
    std::memcpy(x->parent_span_id, parent->span_id, 8);
    x->trace_flags = parent->trace_flags;
    x->link_source = LinkSource::EnclosingServer;
  } else {
    // Several requests in flight on one thread (an event loop): which one
    // made this call is not knowable from syscalls, so none is guessed.
    if (open != open_server_requests_.end()) counters_.links_ambiguous.fetch_add(1, std::memory_order_relaxed);
    ids_.traceId(x->trace_id);
  }
  ids_.spanId(x->span_id);

  if (peer_context_count_ >= options_.max_peer_contexts) prunePeerContexts(x->request.start_ns);
  if (peer_context_count_ >= options_.max_peer_contexts) return;
  auto& queue = peer_contexts_[c->tuple];
  if (queue.size() >= kMaxPeerContextsPerTuple) {
    queue.pop_front();
    peer_context_count_--;
  }
  PeerContext ctx;
  std::memcpy(ctx.trace_id, x->trace_id, 16);
  std::memcpy(ctx.span_id, x->span_id, 8);
  ctx.trace_flags = x->trace_flags;
  ctx.created_ns = x->request.start_ns;
  queue.push_back(ctx);
  peer_context_count_++;
}

void ConnTracker::prunePeerContexts(uint64_t now_ns) {
  for (auto it = peer_contexts_.begin(); it != peer_contexts_.end();) {
    auto& q = it->second;
    while (!q.empty() && now_ns > q.front().created_ns && now_ns - q.front().created_ns > options_.peer_context_ttl_ns) {
      q.pop_front();
      peer_context_count_--;
    }
    it = q.empty() ? peer_contexts_.erase(it) : std::next(it);
  }
}

// A server request stops being a candidate parent of the outgoing calls on
// its thread once its response starts.
void ConnTracker::leaveEnclosingCandidates(Exchange* x) {
  if (x->conn->role != uint8_t(ExchangeRole::Server)) return;
  auto it = open_server_requests_.find(ThreadKey{x->conn->key.pid, x->request.tid});
  if (it == open_server_requests_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
  if (v.empty()) open_server_requests_.erase(it);
}

void ConnTracker::emit(Conn* c, Exchange* x) {
  leaveEnclosingCandidates(x);
  ExchangeRecord rec{};
  rec.record_bytes = sizeof(rec) + x->request.payload.size() + x->response.payload.size();
  rec.role = c->role;
  rec.flags = x->flags;
  rec.link_source = uint8_t(x->link_source);
  rec.trace_flags = x->trace_flags;
  rec.pid = c->key.pid;
  rec.tid = x->request.tid;
  rec.fd = c->key.fd;
  rec.generation = c->generation;
  rec.family = c->family;
  rec.local_port = c->tuple.local_port;
  rec.remote_port = c->tuple.remote_port;
  rec.protocol = uint8_t(Protocol::Http1);
  std::memcpy(rec.local_addr, c->tuple.local_addr.data(), 16);
  std::memcpy(rec.remote_addr, c->tuple.remote_addr.data(), 16);
  rec.request_start_ns = x->request.start_ns;
  rec.request_end_ns = x->request.last_ns;
  if (x->has_response) {
    rec.response_start_ns = x->response.start_ns;
    rec.response_end_ns = x->response.last_ns;
    rec.response_bytes = x->response.bytes;
  }
  rec.request_bytes = x->request.bytes;
  std::memcpy(rec.trace_id, x->trace_id, 16);
  std::memcpy(rec.span_id, x->span_id, 8);
  std::memcpy(rec.parent_span_id, x->parent_span_id, 8);
  std::memcpy(rec.comm, c->comm, sizeof(rec.comm));
  rec.request_payload_bytes = x->request.payload.size();
  rec.response_payload_bytes = x->response.payload.size();

  size_t at = output_.size();
  output_.resize(at + rec.record_bytes);
  std::memcpy(output_.data() + at, &rec, sizeof(rec));
  std::memcpy(output_.data() + at + sizeof(rec), x->request.payload.data(), x->request.payload.size());
  std::memcpy(output_.data() + at + sizeof(rec) + x->request.payload.size(), x->response.payload.data(),
              x->response.payload.size());
  counters_.exchanges_emitted.fetch_add(1, std::memory_order_relaxed);

  if (c->current_exchange == x) {
    c->current = nullptr;
    c->current_exchange = nullptr;
  }
  auto& q = c->exchanges;
  q.erase(std::find_if(q.begin(), q.end(), [x](const std::unique_ptr<Exchange>& e) { return e.get() == x; }));
}

void ConnTracker::dropExchange(Conn* c, Exchange* x) {
  leaveEnclosingCandidates(x);
  counters_.exchanges_abandoned.fetch_add(1, std::memory_order_relaxed);
  if (c->current_exchange == x) {
    c->current = nullptr;
    c->current_exchange = nullptr;
  }
  auto& q = c->exchanges;
  q.erase(std::find_if(q.begin(), q.end(), [x](const std::unique_ptr<Exchange>& e) { return e.get() == x; }));
}

void ConnTracker::closeConn(Conn* c, uint8_t pending_flag) {
  while (!c->exchanges.empty()) {
    Exchange* x = c->exchanges.front().get();
    if (!x->has_response) x->flags |= pending_flag;
    emit(c, x);
  }
  if (c->role == uint8_t(ExchangeRole::Client)) {
    auto it = peer_contexts_.find(c->tuple);
    if (it != peer_contexts_.end()) {
      peer_context_count_ -= it->second.size();
      peer_contexts_.erase(it);
    }
  }
  eraseConn(c);
}

void ConnTracker::eraseConn(Conn* c) {
  lru_.erase(c->lru_pos);
  conns_.erase(c->key);
  counters_.connections_tracked.store(conns_.size(), std::memory_order_relaxed);
}

void ConnTracker::onClose(const sonde_close_event& ev) {
  auto it = conns_.find(ConnKey{ev.hdr.pid, ev.hdr.fd});
  if (it == conns_.end() || it->second->generation != ev.hdr.generation) return;
  Conn* c = it->second.get();
  if (c->last_seq != 0 && ev.last.seq != c->last_seq) {
    counters_.messages_lost.fetch_add(ev.last.seq - c->last_seq, std::memory_order_relaxed);
  } else if (c->current) {
    c->current->last_ns = std::max<uint64_t>(c->current->last_ns, ev.last.last_chunk_ns);
    if (ev.last.total_bytes > c->current->group_offset) c->current->bytes += ev.last.total_bytes - c->current->group_offset;
    Exchange* x = c->current_exchange;
    if (c->current_is_response && x->response_head.framing == BodyFraming::Length &&
        x->response.bytes < framedMessageBytes(x->response_head, nullptr, 0)) {
      // The peer or the process gave up in the middle of the body.
      x->flags |= kResponseIncomplete;
      counters_.responses_incomplete.fetch_add(1, std::memory_order_relaxed);
    }
  }
  c->current = nullptr;
  closeConn(c, kClosedBeforeResponse);
}

void ConnTracker::onProcessExit(uint32_t pid, uint64_t now_ns) {
  (void)now_ns;
  std::vector<Conn*> victims;
  for (auto& [key, conn] : conns_)
    if (key.pid == pid) victims.push_back(conn.get());
  for (Conn* c : victims) {
    for (auto& x : c->exchanges)
      if (x->has_response) x->flags |= kEndEstimated;
    c->current = nullptr;
    closeConn(c, kClosedBeforeResponse);
  }
}

void ConnTracker::onSelfConnect(const sonde_self_connect_event& ev) {
  if (self_tuples_.size() >= options_.max_self_tuples) {
    // Oldest first would need another list; these are few (one per export
    // connection) and short-lived, so starting over is good enough.
    self_tuples_.clear();
  }
  self_tuples_[endpointOf(ev.tuple)] = ev.hdr.timestamp_ns;
}

void ConnTracker::checkQuietResponse(Conn* c, uint64_t now_ns, bool final) {
  Exchange* x = c->current_exchange;
  Message& r = x->response;
  KernelMessage k;
  bool known = lookup_ && lookup_(c->key.pid, c->key.fd, c->generation, r.seq, &k);
  if (!known) {
    // The kernel has moved on (the event that says so is on its way) or
    // lost the connection: give it a few periods, then close at what we have.
    if (final || now_ns - c->last_event_ns >= kEstimateAfterIdlePeriods * options_.response_quiet_ns) {
      x->flags |= kEndEstimated;
      emit(c, x);
    }
    return;
  }
  uint64_t bytes = k.total_bytes > r.group_offset ? k.total_bytes - r.group_offset : 0;
  const Http1Head& head = x->response_head;
  bool over = false;
  switch (head.framing) {
    case BodyFraming::None:
    case BodyFraming::Length:
      over = bytes >= framedMessageBytes(head, nullptr, 0);
      break;
    case BodyFraming::Chunked:
      over = endsChunkedBody(k.tail, k.tail_bytes, k.tail_bytes < SONDE_TAIL_BYTES);
      break;
    case BodyFraming::UntilClose:
      break;  // the close event ends it
    case BodyFraming::Unknown:
      // The head was longer than the capture: nothing says where the body
      // ends, so a quiet connection is taken as its end.
      over = true;
      x->flags |= kEndEstimated;
      break;
  }
  bool quiet_too_long = now_ns > k.last_chunk_ns && now_ns - k.last_chunk_ns >= options_.response_timeout_ns;
  if (!over && !final && !quiet_too_long) {
    x->next_check_ns = now_ns + options_.response_quiet_ns;
    return;
  }
  if (!over) {
    x->flags |= kResponseIncomplete;
    counters_.responses_incomplete.fetch_add(1, std::memory_order_relaxed);
  }
  r.last_ns = std::max<uint64_t>(r.last_ns, k.last_chunk_ns);
  r.bytes = bytes;
  emit(c, x);
}

void ConnTracker::onTick(uint64_t now_ns) {
  std::vector<Conn*> quiet;
  for (auto& [key, conn] : conns_) {
    (void)key;
    Conn* c = conn.get();
    if (c->current && c->current_is_response && now_ns > c->last_event_ns &&
        now_ns - c->last_event_ns >= options_.response_quiet_ns && now_ns >= c->current_exchange->next_check_ns)
      quiet.push_back(c);
  }
  for (Conn* c : quiet) checkQuietResponse(c, now_ns, false);

  if (now_ns - last_timeout_scan_ns_ < kTimeoutScanEveryNs) return;
  last_timeout_scan_ns_ = now_ns;
  for (auto& [key, conn] : conns_) {
    (void)key;
    auto& q = conn->exchanges;
    while (!q.empty() && !q.front()->has_response && now_ns > q.front()->request.start_ns &&
           now_ns - q.front()->request.start_ns > options_.response_timeout_ns) {
      q.front()->flags |= kNoResponse;
      counters_.requests_timed_out.fetch_add(1, std::memory_order_relaxed);
      emit(conn.get(), q.front().get());
    }
  }
  prunePeerContexts(now_ns);
}

void ConnTracker::finishAll(uint64_t now_ns) {
  std::vector<Conn*> all;
  for (auto& [key, conn] : conns_) all.push_back(conn.get());
  for (Conn* c : all) {
    if (c->current && c->current_is_response) checkQuietResponse(c, now_ns, true);
    for (auto& x : c->exchanges) {
      leaveEnclosingCandidates(x.get());
      counters_.exchanges_abandoned.fetch_add(1, std::memory_order_relaxed);
    }
    c->exchanges.clear();
    c->current = nullptr;
    eraseConn(c);
  }
}

}  // namespace sonde
