#include "Http1Stitcher.h"

#include <algorithm>
#include <cstring>

#include "Traceparent.h"

namespace sonde {
namespace {

// A quiet response whose kernel state cannot be read any more is closed out
// at its first chunk after this many idle periods.
constexpr uint64_t kEstimateAfterIdlePeriods = 10;

// Request heads are followed up to the kernel's bound; a group of
// pipelined requests keeps at most this much besides.
constexpr size_t kMaxRequestGroupBytes = SONDE_MAX_HEAD_BYTES + SONDE_MAX_PAYLOAD_BYTES;

bool requestIsHead(const std::string& request) { return request.compare(0, 5, "HEAD ") == 0; }

const uint8_t* bytesOf(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

Http1Stitcher::Http1Stitcher(const TrackerOptions& options, TraceLinker& linker, RecordWriter& writer,
                             TrackerCounters& counters, const CurrentMessageLookup& lookup)
    : options_(options), linker_(linker), writer_(writer), counters_(counters), lookup_(lookup) {}

Http1Stitcher::ConnState& Http1Stitcher::stateOf(Connection& c) {
  if (!c.state) c.state = std::make_unique<ConnState>();
  return static_cast<ConnState&>(*c.state);
}

void Http1Stitcher::endCurrentMessage(Connection& c, ConnState& s, const sonde_prev_message& summary) {
  if (!s.current) return;
  s.current->last_ns = std::max<uint64_t>(s.current->last_ns, summary.last_chunk_ns);
  if (summary.total_bytes > s.current->group_offset) s.current->bytes += summary.total_bytes - s.current->group_offset;
  if (s.current_is_response) {
    Http1Exchange* x = s.current_exchange;
    s.current = nullptr;
    writeOut(c, s, x);
  }
}

void Http1Stitcher::onMessageStart(Connection& c, const MessageStart& m) {
  ConnState& s = stateOf(c);
  if (m.prev_applies) endCurrentMessage(c, s, m.prev);
  s.current = nullptr;
  s.request_group.clear();
  s.cut_at = 0;
  if (s.upgraded) {
    // After 101 Switching Protocols (WebSocket; h2c moves to the HTTP/2
    // stitcher at its preface): the upgrade exchange has just been closed
    // out above; the rest is not HTTP/1.
    c.ignored = true;
    return;
  }
  if (c.role == 0) {
    if (m.hdr.msg_class == SONDE_CLASS_HTTP1_REQUEST)
      c.role = uint8_t(m.hdr.direction == SONDE_DIR_INGRESS ? ExchangeRole::Server : ExchangeRole::Client);
    else if (m.hdr.msg_class == SONDE_CLASS_HTTP1_RESPONSE)
      c.role = uint8_t(m.hdr.direction == SONDE_DIR_INGRESS ? ExchangeRole::Client : ExchangeRole::Server);
    else
      return;
  }
  const uint8_t request_direction = c.isServer() ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS;

  if (m.hdr.direction == request_direction) {
    if (m.hdr.msg_class == SONDE_CLASS_HTTP1_REQUEST) {
      s.request_group.assign(reinterpret_cast<const char*>(m.payload), m.payload_bytes);
      s.group_start_ns = m.hdr.timestamp_ns;
      s.group_tid = m.hdr.tid;
      s.group_cause = m.cause;
      s.group_cause_is_this_connection = m.hdr.cause_fd == m.hdr.fd && m.hdr.cause_generation == m.hdr.generation;
      s.group_seq = m.hdr.msg_seq;
      Http1Exchange* x = openExchange(c, s, m.hdr.timestamp_ns, m.hdr.tid, m.hdr.msg_seq);
      s.current = &x->request;
      s.current_exchange = x;
      s.current_is_response = false;
      cutPipelinedRequests(c, s);
    } else if (!s.exchanges.empty() && !s.exchanges.back()->has_response) {
      // A body sent after an interim response (Expect: 100-continue).
      s.current = &s.exchanges.back()->request;
      s.current_exchange = s.exchanges.back().get();
      s.current_is_response = false;
      s.current->group_offset = 0;
    }
    return;
  }
  if (m.hdr.msg_class == SONDE_CLASS_HTTP1_RESPONSE) pairResponses(c, s, m);
}

bool Http1Stitcher::onContinue(Connection& c, const MessageContinue& m) {
  ConnState& s = stateOf(c);
  if (m.hdr.msg_seq != s.group_seq || m.hdr.msg_seq != c.last_seq || s.current_is_response || !s.current_exchange)
    return false;
  size_t room = kMaxRequestGroupBytes - std::min(kMaxRequestGroupBytes, s.request_group.size());
  s.request_group.append(reinterpret_cast<const char*>(m.payload), std::min<size_t>(m.payload_bytes, room));
  cutPipelinedRequests(c, s);
  return true;
}

Http1Stitcher::Http1Exchange* Http1Stitcher::openExchange(Connection& c, ConnState& s, uint64_t start_ns,
                                                           uint32_t tid, uint32_t seq) {
  if (s.exchanges.size() >= options_.max_pending_per_connection) drop(c, s, s.exchanges.front().get());
  auto x = std::make_unique<Http1Exchange>();
  x->request.seq = seq;
  x->request.tid = tid;
  x->request.start_ns = x->request.last_ns = start_ns;
  if (c.preexisting) x->flags |= kPreexistingConnection;
  Http1Exchange* raw = x.get();
  s.exchanges.push_back(std::move(x));
  return raw;
}

void Http1Stitcher::cutPipelinedRequests(Connection& c, ConnState& s) {
  // The exchange whose head begins at cut_at is the newest one: it was
  // opened when its first bytes were seen.
  Http1Exchange* x = s.current_exchange;
  for (;;) {
    const uint8_t* at = bytesOf(s.request_group) + s.cut_at;
    size_t left = s.request_group.size() - s.cut_at;
    Http1Head head = parseRequestHead(at, left);
    x->request.payload.assign(reinterpret_cast<const char*>(at), head.complete ? head.head_bytes : left);
    linkRequest(c, s, x, head.complete);
    if (!head.complete) return;
    uint64_t size = framedMessageBytes(head, at, left);
    if (size == 0 || size >= left || !looksLikeRequestStart(at + size, left - size)) return;
    // Another request follows in the same chunk (pipelining): this one is
    // whole; the next starts where it ends, at the same moment.
    x->request.bytes = size;
    size_t next_offset = s.cut_at + size;
    Http1Exchange* next = openExchange(c, s, s.group_start_ns, s.group_tid, s.group_seq);
    next->request.group_offset = x->request.group_offset + size;
    s.cut_at = next_offset;
    s.current = &next->request;
    s.current_exchange = next;
    x = next;
  }
}

void Http1Stitcher::linkRequest(Connection& c, ConnState& s, Http1Exchange* x, bool head_complete) {
  const std::string& head = x->request.payload;
  TraceparentValue tp;
  if (!x->linked) {
    RequestHints hints;
    hints.pid = c.key.pid;
    hints.tid = x->request.tid;
    hints.start_ns = x->request.start_ns;
    hints.tuple = &c.tuple;
    hints.fd = c.key.fd;
    hints.generation = c.generation;
    if (c.isServer()) {
      hints.callbacks = &c.callbacks;
      if (findTraceparent(bytesOf(head), head.size(), &tp)) hints.traceparent = &tp;
      linker_.linkServerRequest(hints, &x->context);
    } else {
      hints.cause = s.group_cause;
      hints.cause_is_this_connection = s.group_cause_is_this_connection;
      linker_.linkClientRequest(hints, &x->context);
    }
    x->linked = true;
  } else if (c.isServer() && head_complete && x->context.link_source != LinkSource::TraceparentHeader &&
             findTraceparent(bytesOf(head), head.size(), &tp)) {
    linker_.adoptTraceparent(tp, &x->context, &c.callbacks);
  }
}

void Http1Stitcher::pairResponses(Connection& c, ConnState& s, const MessageStart& m) {
  uint32_t offset = 0;
  while (offset < m.payload_bytes) {
    const uint8_t* at = m.payload + offset;
    uint32_t left = m.payload_bytes - offset;
    if (!looksLikeResponseStart(at, left)) return;
    Http1Exchange* x = nullptr;
    for (auto& e : s.exchanges) {
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
    x->response.seq = m.hdr.msg_seq;
    x->response.tid = m.hdr.tid;
    x->response.start_ns = x->response.last_ns = m.hdr.timestamp_ns;
    x->response.group_offset = offset;
    x->response.payload.assign(reinterpret_cast<const char*>(at), head.complete ? head.head_bytes : left);
    x->response_head = head;
    releaseFromLinker(c, x);
    if (!c.isServer()) TraceLinker::responseResumes(x->context, &c.callbacks);
    if (head.status == 101) s.upgraded = true;
    if (!another_follows) {
      s.current = &x->response;
      s.current_exchange = x;
      s.current_is_response = true;
      return;
    }
    // Whole inside this chunk, and the next response follows it.
    x->response.bytes = size;
    offset += uint32_t(size);
    writeOut(c, s, x);
  }
}

void Http1Stitcher::checkQuietResponse(Connection& c, ConnState& s, uint64_t now_ns, bool final) {
  Http1Exchange* x = s.current_exchange;
  Message& r = x->response;
  KernelMessage k;
  bool known = lookup_ && lookup_(c.key.pid, c.key.fd, c.generation, r.seq, &k);
  if (!known) {
    // The kernel has moved on (the event that says so is on its way) or
    // lost the connection: give it a few periods, then close at what we have.
    if (final || now_ns - c.last_event_ns >= kEstimateAfterIdlePeriods * options_.response_quiet_ns) {
      x->flags |= kEndEstimated;
      writeOut(c, s, x);
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
  writeOut(c, s, x);
}

// A server request stops being a candidate parent of the outgoing calls on
// its thread once its response starts.
void Http1Stitcher::releaseFromLinker(const Connection& c, const Http1Exchange* x) {
  if (c.isServer()) linker_.serverRequestAnswered(c.key.pid, x->request.tid, &x->context);
}

// The exchange leaves the stitcher: a client call is no longer in flight.
// Not at its response's start: the code waiting for it resumes at the
// response's end, often a read after the head's.
void Http1Stitcher::endInLinker(const Connection& c, Http1Exchange* x) {
  releaseFromLinker(c, x);
  if (!c.isServer()) linker_.clientCallEnded(&x->context, x->has_response ? x->response.last_ns : 0);
}

void Http1Stitcher::forget(ConnState& s, Http1Exchange* x) {
  if (s.current_exchange == x) {
    s.current = nullptr;
    s.current_exchange = nullptr;
  }
  auto& q = s.exchanges;
  q.erase(std::find_if(q.begin(), q.end(), [x](const std::unique_ptr<Http1Exchange>& e) { return e.get() == x; }));
}

void Http1Stitcher::writeOut(Connection& c, ConnState& s, Http1Exchange* x) {
  endInLinker(c, x);
  writer_.write(c, *x, Protocol::Http1);
  forget(s, x);
}

void Http1Stitcher::writeOutAll(Connection& c, ConnState& s) {
  while (!s.exchanges.empty()) {
    Http1Exchange* x = s.exchanges.front().get();
    if (!x->has_response) x->flags |= kClosedBeforeResponse;
    writeOut(c, s, x);
  }
}

void Http1Stitcher::drop(Connection& c, ConnState& s, Http1Exchange* x) {
  endInLinker(c, x);
  counters_.exchanges_abandoned.fetch_add(1, std::memory_order_relaxed);
  forget(s, x);
}

void Http1Stitcher::abandonAll(Connection& c, ConnState& s) {
  for (auto& x : s.exchanges) {
    endInLinker(c, x.get());
    counters_.exchanges_abandoned.fetch_add(1, std::memory_order_relaxed);
  }
  s.exchanges.clear();
  s.current = nullptr;
  s.current_exchange = nullptr;
}

void Http1Stitcher::onEventsLost(Connection& c) {
  ConnState& s = stateOf(c);
  while (!s.exchanges.empty()) drop(c, s, s.exchanges.front().get());
  s.current = nullptr;
}

void Http1Stitcher::onClose(Connection& c, const sonde_prev_message& last, bool last_applies) {
  ConnState& s = stateOf(c);
  if (last_applies && s.current) {
    s.current->last_ns = std::max<uint64_t>(s.current->last_ns, last.last_chunk_ns);
    if (last.total_bytes > s.current->group_offset) s.current->bytes += last.total_bytes - s.current->group_offset;
    Http1Exchange* x = s.current_exchange;
    if (s.current_is_response && x->response_head.framing == BodyFraming::Length &&
        x->response.bytes < framedMessageBytes(x->response_head, nullptr, 0)) {
      // The peer or the process gave up in the middle of the body.
      x->flags |= kResponseIncomplete;
      counters_.responses_incomplete.fetch_add(1, std::memory_order_relaxed);
    }
  }
  s.current = nullptr;
  writeOutAll(c, s);
}

void Http1Stitcher::onGone(Connection& c, bool process_exited) {
  ConnState& s = stateOf(c);
  if (process_exited) {
    for (auto& x : s.exchanges)
      if (x->has_response) x->flags |= kEndEstimated;
    s.current = nullptr;
  }
  writeOutAll(c, s);
}

void Http1Stitcher::onTick(Connection& c, uint64_t now_ns) {
  ConnState& s = stateOf(c);
  if (s.current && s.current_is_response && now_ns > c.last_event_ns &&
      now_ns - c.last_event_ns >= options_.response_quiet_ns && now_ns >= s.current_exchange->next_check_ns)
    checkQuietResponse(c, s, now_ns, false);
}

void Http1Stitcher::onTimeoutScan(Connection& c, uint64_t now_ns) {
  ConnState& s = stateOf(c);
  auto& q = s.exchanges;
  while (!q.empty() && !q.front()->has_response && now_ns > q.front()->request.start_ns &&
         now_ns - q.front()->request.start_ns > options_.response_timeout_ns) {
    q.front()->flags |= kNoResponse;
    counters_.requests_timed_out.fetch_add(1, std::memory_order_relaxed);
    writeOut(c, s, q.front().get());
  }
}

void Http1Stitcher::onShutdown(Connection& c, uint64_t now_ns) {
  ConnState& s = stateOf(c);
  if (s.current && s.current_is_response) checkQuietResponse(c, s, now_ns, true);
  abandonAll(c, s);
}

void Http1Stitcher::onEvicted(Connection& c) { abandonAll(c, stateOf(c)); }

}  // namespace sonde
