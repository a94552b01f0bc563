#include "Http2Stitcher.h"

#include <cstring>

#include "Traceparent.h"

namespace sonde {
namespace {

using http2::DecodedBlock;
using http2::HeaderBlock;
using http2::HeaderField;
using http2::HpackStatus;

constexpr int kIngress = SONDE_DIR_INGRESS - 1;
constexpr int kEgress = SONDE_DIR_EGRESS - 1;
constexpr uint16_t kSettingsHeaderTableSize = 0x1;
constexpr uint16_t kSettingsMaxFrameSize = 0x5;

// HTTP2_PAYLOAD (ExchangeRecord.h): one line per field. False when the
// field does not fit in max_bytes and is left out: the headers are then
// incomplete, as when a block is lost, and whoever reads them must not
// take a field missing for its absence (a content-type behind a large
// cookie decides gRPC or not).
bool appendField(std::string* out, const HeaderField& f, size_t max_bytes) {
  size_t need = (f.name_unknown ? 1 : f.name.size() + 1) + (f.value_unknown ? 0 : f.value.size() + 2) + 2;
  if (out->size() + need > max_bytes) return false;
  auto clean = [out](const std::string& s) {
    for (char ch : s) out->push_back(ch == '\r' || ch == '\n' || ch == '\0' ? ' ' : ch);
  };
  if (f.name_unknown) {
    out->push_back('?');
  } else if (f.value_unknown) {
    out->push_back('?');
    clean(f.name);
  } else {
    clean(f.name);
    out->append(": ");
    clean(f.value);
  }
  out->append("\r\n");
  return true;
}

const HeaderField* findField(const DecodedBlock& b, const char* name) {
  for (const HeaderField& f : b.fields)
    if (!f.name_unknown && f.name == name) return &f;
  return nullptr;
}

}  // namespace

// Hands one event's frames to the stitcher, in order.
class Http2Stitcher::Sink : public http2::FrameSink {
 public:
  Sink(Http2Stitcher& st, Connection& c, ConnState& s, int d, const FramesChunk& f)
      : st_(st), c_(c), s_(s), d_(d), f_(f) {}
  void onHeaderBlock(const HeaderBlock& b) override { st_.onHeaders(c_, s_, d_, b, f_); }
  void onData(uint32_t stream_id, uint32_t bytes, bool end_stream) override {
    st_.onData(c_, s_, d_, stream_id, bytes, end_stream, f_.hdr.timestamp_ns);
  }
  void onRstStream(uint32_t stream_id, uint32_t error_code) override {
    st_.onReset(c_, s_, stream_id, error_code, f_.hdr.timestamp_ns);
  }
  void onGoaway(uint32_t last_stream_id, uint32_t error_code) override {
    st_.onGoaway(c_, s_, d_, last_stream_id, error_code, f_.hdr.timestamp_ns);
  }
  // A SETTINGS frame's sender receives the other direction's frames and
  // header blocks: its limits apply there.
  void onSetting(uint16_t id, uint32_t value) override {
    Direction& other = s_.dirs[d_ ^ 1];
    if (id == kSettingsHeaderTableSize) {
      s_.advertised_table_bytes[d_ ^ 1] = value;
      s_.table_bytes_advertised[d_ ^ 1] = true;
    }
    if (id == kSettingsHeaderTableSize && other.decoder) other.decoder->setMaxTableBytes(value);
    if (id == kSettingsMaxFrameSize && other.reader) other.reader->setMaxFrameBytes(value);
  }

 private:
  Http2Stitcher& st_;
  Connection& c_;
  ConnState& s_;
  int d_;
  const FramesChunk& f_;
};

Http2Stitcher::Http2Stitcher(const TrackerOptions& options, TraceLinker& linker, RecordWriter& writer,
                             TrackerCounters& counters, PeerTraced peer_traced)
    : options_(options), linker_(linker), writer_(writer), counters_(counters), peer_traced_(std::move(peer_traced)) {}

Http2Stitcher::ConnState& Http2Stitcher::stateOf(Connection& c) {
  if (!c.state) c.state = std::make_unique<ConnState>();
  return static_cast<ConnState&>(*c.state);
}

std::unique_ptr<http2::HpackDecoder> Http2Stitcher::newDecoder(const ConnState& s, int d, bool mid_life) {
  http2::HpackOptions ho;
  ho.mid_life = mid_life;
  // A table size advertised before this decoder existed. Whether the peer's
  // encoder has taken up a smaller one yet is not known here (it must say so
  // with a size update, which the default allows): only a larger one is
  // applied, so that size updates up to it are not taken for errors.
  if (s.table_bytes_advertised[d] && s.advertised_table_bytes[d] > ho.max_table_bytes)
    ho.max_table_bytes = s.advertised_table_bytes[d];
  return std::make_unique<http2::HpackDecoder>(ho);
}

void Http2Stitcher::resetDirection(ConnState& s, int d, bool mid_life) {
  http2::FrameReaderOptions ro;
  ro.data_payload_elided = true;
  ro.payload_copy_bound = SONDE_H2_COPY_BOUND;
  s.dirs[d].reader = std::make_unique<http2::FrameReader>(ro);
  s.dirs[d].decoder = newDecoder(s, d, mid_life);
  s.dirs[d].awaiting_sync = false;
}

void Http2Stitcher::onMessageStart(Connection& c, const MessageStart& m) {
  ConnState& s = stateOf(c);
  // The preface (or the mid-life frames) that made the kernel walk this
  // connection; the frames themselves follow in frames events.
  if (m.hdr.msg_class == SONDE_CLASS_HTTP2_PREFACE && c.role == 0)
    c.role = uint8_t(m.hdr.direction == SONDE_DIR_EGRESS ? ExchangeRole::Client : ExchangeRole::Server);
  // Frames first seen mid-life: the HPACK tables began before us. (A server
  // that writes its SETTINGS first is seen from its accept.)
  if (m.hdr.msg_class == SONDE_CLASS_HTTP2_FRAMES && m.hdr.role_hint == SONDE_ROLE_UNKNOWN) s.mid_life = true;
}

void Http2Stitcher::onFrames(Connection& c, const FramesChunk& f) {
  ConnState& s = stateOf(c);
  int d = (f.hdr.direction - 1) & 1;
  Direction& dir = s.dirs[d];
  // Frames events are numbered per direction: a gap is a lost event, whose
  // header blocks (and stream ends) are gone.
  uint32_t seq = f.hdr.msg_seq;
  if (dir.last_seq != 0 && seq != dir.last_seq + 1) {
    if (seq > dir.last_seq) counters_.messages_lost.fetch_add(seq - dir.last_seq - 1, std::memory_order_relaxed);
    onEventsLost(c);
  }
  dir.last_seq = seq;
  uint32_t from = 0;
  if (f.flags & SONDE_H2_SYNC_START) {
    bool mid_life = (f.flags & SONDE_H2_MID_LIFE) || s.mid_life;
    if (f.flags & SONDE_H2_MID_LIFE) s.mid_life = true;
    resetDirection(s, d, mid_life);
    from = f.first_frame_offset == 0xffff ? f.payload_bytes : f.first_frame_offset;
  } else if (dir.awaiting_sync || !dir.reader) {
    // Lost our place: a frame header that starts in this event is where the
    // walk resumes; HPACK entries inserted meanwhile are unknown.
    if (f.first_frame_offset == 0xffff || f.first_frame_offset > f.payload_bytes) return;
    resetDirection(s, d, true);
    from = f.first_frame_offset;
  }
  s.streams_read_count = 0;
  if (from < f.payload_bytes) {
    Sink sink(*this, c, s, d, f);
    dir.reader->feed(f.payload + from, f.payload_bytes - from, sink);
  }
  // Role may be learnt from this very event (joined mid-life).
  if (c.isServer() && d == kIngress) noteCallbacks(c, s);
  if (dir.reader && dir.reader->broken()) {
    counters_.h2_frame_errors.fetch_add(1, std::memory_order_relaxed);
    dir.awaiting_sync = true;
    dir.reader.reset();
  }
  if (f.flags & SONDE_H2_LOST) {
    counters_.h2_frame_errors.fetch_add(1, std::memory_order_relaxed);
    dir.awaiting_sync = true;
    dir.reader.reset();
  }
}

int Http2Stitcher::requestDirection(const Connection& c) const { return c.isServer() ? kIngress : kEgress; }

void Http2Stitcher::onHeaders(Connection& c, ConnState& s, int d, const HeaderBlock& block, const FramesChunk& f) {
  Direction& dir = s.dirs[d];
  DecodedBlock decoded;
  bool incomplete = false;
  bool predates_sonde = false;  // fields refer to HPACK entries inserted before we saw the connection
  if (block.truncated) {
    // Not decodable, and what it inserted into the peer's table is lost.
    counters_.h2_header_blocks_truncated.fetch_add(1, std::memory_order_relaxed);
    dir.decoder = newDecoder(s, d, true);
    incomplete = true;
  } else {
    decoded = dir.decoder->decode(block.bytes, block.size);
    if (decoded.status == HpackStatus::kError || decoded.status == HpackStatus::kBroken) {
      counters_.h2_hpack_errors.fetch_add(1, std::memory_order_relaxed);
      dir.decoder = newDecoder(s, d, true);
      decoded.fields.clear();
      incomplete = true;
    } else if (decoded.status == HpackStatus::kUnknownDynamicEntry) {
      incomplete = true;
      predates_sonde = true;
    }
  }
  if (block.type == http2::kPushPromise) return;  // decoded for the table's sake only

  const HeaderField* method = findField(decoded, ":method");
  const HeaderField* status = findField(decoded, ":status");
  if (c.role == 0) {
    // Joined mid-life: the sender of a request is the client.
    if (method) c.role = uint8_t(d == kEgress ? ExchangeRole::Client : ExchangeRole::Server);
    else if (status) c.role = uint8_t(d == kIngress ? ExchangeRole::Client : ExchangeRole::Server);
    else return;
  }
  uint64_t ts = f.hdr.timestamp_ns;
  auto it = s.streams.find(block.stream_id);
  Stream* x = it == s.streams.end() ? nullptr : it->second.get();

  if (d == requestDirection(c)) {
    if (x && x->request_headers_seen) {
      // Request trailers (gRPC client streaming never sends any; some do).
      x->last_activity_ns = ts;
      if (block.end_stream) {
        x->request_ended = true;
        x->request.last_ns = ts;
      }
      return;
    }
    if (!x) x = openStream(c, s, block.stream_id);
    if (!x) return;
    x->request_headers_seen = true;
    x->request.start_ns = ts;
    x->request.last_ns = ts;
    x->request.tid = f.hdr.tid;
    x->request.seq = f.hdr.msg_seq;
    x->cause = f.cause;
    x->cause_is_this_connection = f.hdr.cause_fd == f.hdr.fd && f.hdr.cause_generation == f.hdr.generation;
    x->last_activity_ns = ts;
    if (incomplete) x->flags |= kHeadersIncomplete;
    if (predates_sonde) x->fields_predate_sonde = true;
    for (const HeaderField& field : decoded.fields)
      if (!appendField(&x->request.payload, field, options_.max_header_text_bytes)) x->flags |= kHeadersIncomplete;
    if (block.end_stream) x->request_ended = true;
    if (x->has_response && x->response.start_ns < ts) {
      // Its answer was seen first (below): the request was sent before.
      x->request.start_ns = x->response.start_ns;
      x->request.last_ns = x->response.start_ns;
    }
    // A client's context is decided now, before its server end (on this
    // host) reads the stream. A server's now too when its client's context
    // is here or none will come (the client is not traced on this host),
    // so that the calls its handler makes can be its children; else when
    // its response starts, by when a traced client's HEADERS, reported at
    // the exit of its write, have surely come.
    if (!c.isServer() || linker_.hasPeerContext(c.tuple, x->stream_id) || !peer_traced_(c.tuple.mirrored())) link(c, x);
    if (c.isServer()) noteStreamRead(s, x->stream_id);
    if (x->response_ended) finish(c, s, block.stream_id);
    return;
  }

  if (!x && !c.isServer()) {
    // A client's request is reported at the exit of its write, which an
    // answer read on another thread (Go, gRPC C core) can beat: the answer
    // waits for it, for the response timeout at most.
    x = openStream(c, s, block.stream_id);
  }
  if (!x) {
    // The request was before we joined, or was dropped.
    counters_.responses_without_request.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  x->last_activity_ns = ts;
  if (incomplete) x->flags |= kHeadersIncomplete;
  if (predates_sonde) x->fields_predate_sonde = true;
  if (!x->response_headers_seen) {
    // An interim (1xx) response is followed by the final one.
    bool interim = status && status->value.size() == 3 && status->value[0] == '1';
    if (interim && !block.end_stream) return;
    x->response_headers_seen = true;
    x->has_response = true;
    x->response.start_ns = ts;
    x->response.tid = f.hdr.tid;
    for (const HeaderField& field : decoded.fields)
      if (!appendField(&x->response.payload, field, options_.max_header_text_bytes)) x->flags |= kHeadersIncomplete;
    if (c.isServer()) {
      link(c, x);
    } else if (s.streams.size() == 1) {
      TraceLinker::responseResumes(x->context, &c.callbacks);
    } else {
      // Several streams open: which one a later read of the connection
      // carried is not known to the thread that reads it.
      c.callbacks.known = false;
      c.callbacks.ambiguous = true;
    }
  } else {
    // Trailers: after an empty line (HTTP2_PAYLOAD).
    if (!x->has_trailers) x->response.payload.append("\r\n");
    x->has_trailers = true;
    for (const HeaderField& field : decoded.fields)
      if (!appendField(&x->response.payload, field, options_.max_header_text_bytes)) x->flags |= kHeadersIncomplete;
  }
  x->response.last_ns = ts;
  if (block.end_stream) endResponse(c, s, block.stream_id);
}

void Http2Stitcher::endResponse(Connection& c, ConnState& s, uint32_t stream_id) {
  auto it = s.streams.find(stream_id);
  if (it == s.streams.end()) return;
  it->second->response_ended = true;
  if (it->second->request_headers_seen) finish(c, s, stream_id);
}

void Http2Stitcher::onData(Connection& c, ConnState& s, int d, uint32_t stream_id, uint32_t bytes, bool end_stream,
                           uint64_t ts) {
  if (c.role == 0) return;
  auto it = s.streams.find(stream_id);
  if (it == s.streams.end()) return;
  Stream* x = it->second.get();
  x->last_activity_ns = ts;
  if (d == requestDirection(c)) {
    if (c.isServer()) noteStreamRead(s, stream_id);
    x->request.bytes += bytes;
    x->request.last_ns = ts;
    if (end_stream) x->request_ended = true;
    return;
  }
  x->response.bytes += bytes;
  x->response.last_ns = ts;
  if (end_stream) endResponse(c, s, stream_id);
}

void Http2Stitcher::onReset(Connection& c, ConnState& s, uint32_t stream_id, uint32_t error_code, uint64_t ts) {
  auto it = s.streams.find(stream_id);
  if (it == s.streams.end()) return;
  Stream* x = it->second.get();
  x->flags |= kStreamReset;
  x->end_error_code = error_code;
  // The reset is the exchange's last moment: the span ends there (a
  // record without a response ends at its request's end).
  if (x->has_response) x->response.last_ns = ts;
  else x->request.last_ns = ts;
  finish(c, s, stream_id);
}

void Http2Stitcher::onGoaway(Connection& c, ConnState& s, int d, uint32_t last_stream_id, uint32_t error_code,
                             uint64_t ts) {
  // GOAWAY names the last stream its sender processed of those its peer
  // opened; the peer's streams above it never will be.
  if (c.role == 0) return;
  bool sender_is_server = (d == kEgress) == c.isServer();
  if (!sender_is_server) return;  // streams opened by servers (push) are not followed
  std::vector<uint32_t> gone;
  for (auto& [id, x] : s.streams)
    if (id > last_stream_id) gone.push_back(id);
  for (uint32_t id : gone) onReset(c, s, id, error_code, ts);
}

Http2Stitcher::Stream* Http2Stitcher::openStream(Connection& c, ConnState& s, uint32_t stream_id) {
  if (s.streams.size() >= options_.max_streams_per_connection) {
    counters_.h2_streams_dropped.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto x = std::make_unique<Stream>();
  x->stream_id = stream_id;
  // Not s.mid_life: the kernel also says MID_LIFE when its walk resyncs after
  // a loss, on a connection whose accept or connect it saw.
  if (c.preexisting) x->flags |= kPreexistingConnection;
  Stream* raw = x.get();
  s.streams.emplace(stream_id, std::move(x));
  return raw;
}

void Http2Stitcher::link(Connection& c, Stream* x) {
  if (x->linked) return;
  x->linked = true;
  TraceparentValue tp;
  bool has_tp = findTraceparent(reinterpret_cast<const uint8_t*>(x->request.payload.data()), x->request.payload.size(), &tp);
  RequestHints hints;
  hints.pid = c.key.pid;
  hints.tid = x->request.tid;
  hints.start_ns = x->request.start_ns;
  hints.tuple = &c.tuple;
  hints.traceparent = has_tp ? &tp : nullptr;
  hints.stream_id = x->stream_id;
  hints.fd = c.key.fd;
  hints.generation = c.generation;
  if (c.isServer()) {
    linker_.linkServerRequest(hints, &x->context);
    // Several streams share a thread on every HTTP/2 server we know: none
    // is a candidate parent for calls on that thread by itself.
    linker_.serverRequestAnswered(c.key.pid, x->request.tid, &x->context);
  } else {
    hints.cause = x->cause;
    hints.cause_is_this_connection = x->cause_is_this_connection;
    linker_.linkClientRequest(hints, &x->context);
  }
}

void Http2Stitcher::noteStreamRead(ConnState& s, uint32_t stream_id) {
  for (uint8_t i = 0; i < s.streams_read_count; i++)
    if (s.streams_read[i] == stream_id) return;
  if (s.streams_read_count < s.streams_read.size()) s.streams_read[s.streams_read_count] = stream_id;
  if (s.streams_read_count < 0xff) s.streams_read_count++;
}

void Http2Stitcher::noteCallbacks(Connection& c, ConnState& s) {
  // A read of several streams' frames (or of none: SETTINGS, PING, window
  // updates) says nothing about which stream the code after it serves.
  c.callbacks.known = false;
  c.callbacks.ambiguous = s.streams_read_count > 1;
  if (s.streams_read_count != 1) return;
  auto it = s.streams.find(s.streams_read[0]);
  if (it == s.streams.end() || !it->second->linked) return;
  TraceLinker::servedBy(it->second->context, &c.callbacks);
}

void Http2Stitcher::finish(Connection& c, ConnState& s, uint32_t stream_id) {
  auto it = s.streams.find(stream_id);
  if (it == s.streams.end()) return;
  Stream* x = it->second.get();
  if (!x->request_headers_seen) {
    // An answer whose request never came (see onHeaders): nothing to write.
    counters_.responses_without_request.fetch_add(1, std::memory_order_relaxed);
    s.streams.erase(it);
    return;
  }
  link(c, x);
  linker_.clientCallEnded(&x->context, x->has_response ? x->response.last_ns : 0);
  if (x->fields_predate_sonde) counters_.h2_headers_unknown.fetch_add(1, std::memory_order_relaxed);
  writer_.write(c, *x, Protocol::Http2);
  s.streams.erase(it);
}

void Http2Stitcher::writeOutAll(Connection& c, ConnState& s, uint8_t flag_without_response, uint8_t flag_with_response) {
  while (!s.streams.empty()) {
    Stream* x = s.streams.begin()->second.get();
    x->flags |= x->has_response ? flag_with_response : flag_without_response;
    if (x->has_response && x->request_headers_seen) counters_.responses_incomplete.fetch_add(1, std::memory_order_relaxed);
    finish(c, s, s.streams.begin()->first);
  }
}

void Http2Stitcher::abandonAll(Connection&, ConnState& s) {
  counters_.exchanges_abandoned.fetch_add(s.streams.size(), std::memory_order_relaxed);
  for (auto& entry : s.streams) linker_.clientCallEnded(&entry.second->context, 0);
  s.streams.clear();
}

void Http2Stitcher::onEventsLost(Connection& c) {
  ConnState& s = stateOf(c);
  // Header blocks may be gone: both decoders start again, and what is in
  // flight cannot be trusted to end.
  for (Direction& dir : s.dirs) {
    dir.awaiting_sync = true;
    dir.reader.reset();
  }
  abandonAll(c, s);
}

void Http2Stitcher::onClose(Connection& c, const sonde_prev_message&, bool) {
  ConnState& s = stateOf(c);
  writeOutAll(c, s, kClosedBeforeResponse, kResponseIncomplete);
}

void Http2Stitcher::onGone(Connection& c, bool) {
  ConnState& s = stateOf(c);
  writeOutAll(c, s, kClosedBeforeResponse, kResponseIncomplete);
}

void Http2Stitcher::onTimeoutScan(Connection& c, uint64_t now_ns) {
  ConnState& s = stateOf(c);
  // A stream with no response yet is given the response timeout. One whose
  // response has started may be a long-lived gRPC stream (a watch) that is
  // quiet for minutes and still ends with its trailers: it is given ten.
  auto quiet_for = [&](const Stream& x) { return now_ns > x.last_activity_ns ? now_ns - x.last_activity_ns : 0; };
  std::vector<uint32_t> quiet;
  for (auto& [id, x] : s.streams) {
    bool long_lived = x->has_response && x->request_headers_seen;
    uint64_t limit = long_lived ? 10 * options_.response_timeout_ns : options_.response_timeout_ns;
    if (quiet_for(*x) > limit) quiet.push_back(id);
  }
  for (uint32_t id : quiet) {
    Stream* x = s.streams[id].get();
    if (!x->request_headers_seen) {
      finish(c, s, id);  // an answer whose request never came: dropped, counted
      continue;
    }
    if (x->has_response) {
      x->flags |= kResponseIncomplete;
      counters_.responses_incomplete.fetch_add(1, std::memory_order_relaxed);
    } else {
      x->flags |= kNoResponse;
      counters_.requests_timed_out.fetch_add(1, std::memory_order_relaxed);
    }
    finish(c, s, id);
  }
}

void Http2Stitcher::onShutdown(Connection& c, uint64_t) {
  ConnState& s = stateOf(c);
  // Streams whose response has started are written as far as known.
  std::vector<uint32_t> answered;
  for (auto& [id, x] : s.streams)
    if (x->has_response && x->request_headers_seen) answered.push_back(id);
  for (uint32_t id : answered) {
    s.streams[id]->flags |= kResponseIncomplete;
    counters_.responses_incomplete.fetch_add(1, std::memory_order_relaxed);
    finish(c, s, id);
  }
  abandonAll(c, s);
}

void Http2Stitcher::onEvicted(Connection& c) {
  ConnState& s = stateOf(c);
  abandonAll(c, s);
}

}  // namespace sonde
