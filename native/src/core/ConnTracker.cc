#include "ConnTracker.h"

#include <cstring>

namespace sonde {
namespace {

constexpr uint64_t kTimeoutScanEveryNs = 1'000'000'000;

}  // namespace

ConnTracker::ConnTracker(const TrackerOptions& options, CurrentMessageLookup lookup, uint64_t id_seed)
    : options_(options),
      lookup_(std::move(lookup)),
      writer_(counters_),
      linker_(options_, counters_, id_seed),
      http1_(options_, linker_, writer_, counters_, lookup_),
      http2_(options_, linker_, writer_, counters_, [this](const ConnTuple& t) { return table_.holdsTuple(t); }),
      table_(options_, counters_, [this](Connection& c, ConnectionTable::Departure why) {
        if (why == ConnectionTable::Departure::FdReused)
          retire(c, false);
        else if (c.stitcher)
          c.stitcher->onEvicted(c);
      }) {}

ConnTracker::~ConnTracker() = default;

void ConnTracker::onEvent(const uint8_t* data, size_t len) {
  counters_.events_read.fetch_add(1, std::memory_order_relaxed);
  if (len < sizeof(sonde_event_header)) {
    counters_.events_malformed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Event kinds: enum sonde_event_kind of bpf/shared/events.h.
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
    case SONDE_EV_H2_FRAMES: {
      if (len < SONDE_H2_FRAMES_HEADER_BYTES) break;
      sonde_h2_frames_event ev;
      std::memcpy(&ev, data, SONDE_H2_FRAMES_HEADER_BYTES);
      if (ev.payload_bytes > len - SONDE_H2_FRAMES_HEADER_BYTES || ev.payload_bytes > SONDE_H2_EVENT_BYTES) break;
      onH2Frames(ev, data + SONDE_H2_FRAMES_HEADER_BYTES, ev.payload_bytes);
      return;
    }
    case SONDE_EV_CLOSE: {
      if (len < sizeof(sonde_close_event)) break;
      sonde_close_event ev;
      std::memcpy(&ev, data, sizeof(ev));
      onClose(ev);
      return;
    }
    case SONDE_EV_CONNECT: {
      if (len < sizeof(sonde_connect_event)) break;
      sonde_connect_event ev;
      std::memcpy(&ev, data, sizeof(ev));
      linker_.noteConnect(ev.hdr.pid, ev.hdr.fd, ev.hdr.generation, causeOf(ev.hdr), ev.hdr.timestamp_ns);
      return;
    }
    case SONDE_EV_SELF_CONNECT: {
      if (len < sizeof(sonde_self_connect_event)) break;
      sonde_self_connect_event ev;
      std::memcpy(&ev, data, sizeof(ev));
      table_.addSelfTuple(ev.tuple);
      return;
    }
    case SONDE_EV_PROCESS_EXIT: {
      sonde_event_header hdr;
      std::memcpy(&hdr, data, sizeof(hdr));
      onProcessExit(hdr.pid);
      return;
    }
  }
  counters_.events_malformed.fetch_add(1, std::memory_order_relaxed);
}

Stitcher* ConnTracker::stitcherFor(uint8_t msg_class) {
  switch (msg_class) {
    case SONDE_CLASS_HTTP1_REQUEST:
    case SONDE_CLASS_HTTP1_RESPONSE:
      return &http1_;
    case SONDE_CLASS_HTTP2_PREFACE:
    case SONDE_CLASS_HTTP2_FRAMES:
      return &http2_;
    default:
      return nullptr;
  }
}

void ConnTracker::onMessageStart(const sonde_msg_start_event& ev, const uint8_t* payload, uint32_t len) {
  Connection* c = table_.findOrOpen(ev.hdr, ev.tuple);
  table_.touch(c, ev.hdr.timestamp_ns);
  std::memcpy(c->comm, ev.comm, sizeof(c->comm));
  if (c->ignored) return;
  c->source = ev.hdr.source;

  bool lost = c->last_seq != 0 && ev.hdr.msg_seq != c->last_seq + 1;
  if (lost) {
    // A number from the past (events reordered across CPUs) is no loss to count.
    if (ev.hdr.msg_seq > c->last_seq)
      counters_.messages_lost.fetch_add(ev.hdr.msg_seq - c->last_seq - 1, std::memory_order_relaxed);
    if (c->stitcher) c->stitcher->onEventsLost(*c);
  }
  bool prev_applies = !lost && ev.prev.seq == c->last_seq;
  c->last_seq = ev.hdr.msg_seq;

  Stitcher* wanted = stitcherFor(ev.hdr.msg_class);
  if (wanted == &http2_ && c->stitcher && c->stitcher != wanted) {
    // h2c: HTTP/1 upgraded to HTTP/2, and the kernel walks frames from
    // here on. The summary of the 101 response ends it, as a close would.
    c->stitcher->onClose(*c, ev.prev, prev_applies);
    c->state.reset();
    c->stitcher = nullptr;
  }
  if (!c->stitcher) {
    c->stitcher = wanted;
    if (!c->stitcher) return;
  }
  CallbackContext cause = ev.hdr.direction == SONDE_DIR_EGRESS ? causeOf(ev.hdr) : CallbackContext{};
  c->stitcher->onMessageStart(*c, MessageStart{ev.hdr, ev.prev, prev_applies, payload, len, cause});
}

CallbackContext ConnTracker::causeOf(const sonde_event_header& hdr) {
  if (hdr.cause_fd == SONDE_NO_CAUSE) return CallbackContext{};
  Connection* read = table_.find(hdr.pid, hdr.cause_fd, hdr.cause_generation);
  return read ? read->callbacks : CallbackContext{};
}

void ConnTracker::onMessageContinue(const sonde_msg_continue_event& ev, const uint8_t* payload, uint32_t len) {
  Connection* c = table_.find(ev.hdr.pid, ev.hdr.fd, ev.hdr.generation);
  if (!c || c->ignored || !c->stitcher) return;
  if (c->stitcher->onContinue(*c, MessageContinue{ev.hdr, payload, len})) table_.touch(c, ev.hdr.timestamp_ns);
}

void ConnTracker::onH2Frames(const sonde_h2_frames_event& ev, const uint8_t* payload, uint32_t len) {
  Connection* c = table_.find(ev.hdr.pid, ev.hdr.fd, ev.hdr.generation);
  if (!c || !c->stitcher) {
    // Its start event was lost, or the table evicted it: the connection
    // stays dark until it closes, and this says so.
    if (!c || !c->ignored) counters_.h2_frames_unmatched.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (c->ignored) return;
  table_.touch(c, ev.hdr.timestamp_ns);
  // hdr.msg_seq counts frames events per direction: the stitcher checks it.
  CallbackContext cause = ev.hdr.direction == SONDE_DIR_EGRESS ? causeOf(ev.hdr) : CallbackContext{};
  c->stitcher->onFrames(*c, FramesChunk{ev.hdr, ev.flags, ev.first_frame_offset, payload, len, cause});
}

void ConnTracker::onClose(const sonde_close_event& ev) {
  Connection* c = table_.find(ev.hdr.pid, ev.hdr.fd, ev.hdr.generation);
  if (!c) return;
  bool lost = c->last_seq != 0 && ev.last.seq != c->last_seq;
  if (lost && ev.last.seq > c->last_seq)
    counters_.messages_lost.fetch_add(ev.last.seq - c->last_seq, std::memory_order_relaxed);
  if (c->stitcher) c->stitcher->onClose(*c, ev.last, !lost);
  forgetClientIds(*c);
  table_.erase(c);
}

void ConnTracker::onProcessExit(uint32_t pid) {
  for (Connection* c : table_.ofProcess(pid)) {
    retire(*c, true);
    table_.erase(c);
  }
}

void ConnTracker::retire(Connection& c, bool process_exited) {
  if (c.stitcher) c.stitcher->onGone(c, process_exited);
  forgetClientIds(c);
}

void ConnTracker::forgetClientIds(const Connection& c) {
  if (c.role == uint8_t(ExchangeRole::Client)) linker_.clientConnectionClosed(c.tuple);
  linker_.connectionGone(c.key.pid, c.key.fd, c.generation);
}

void ConnTracker::onTick(uint64_t now_ns) {
  table_.forEach([&](Connection& c) {
    if (c.stitcher) c.stitcher->onTick(c, now_ns);
  });
  if (now_ns - last_timeout_scan_ns_ < kTimeoutScanEveryNs) return;
  last_timeout_scan_ns_ = now_ns;
  table_.forEach([&](Connection& c) {
    if (c.stitcher) c.stitcher->onTimeoutScan(c, now_ns);
  });
  linker_.pruneExpired(now_ns);
}

void ConnTracker::finishAll(uint64_t now_ns) {
  for (Connection* c : table_.all()) {
    if (c->stitcher) c->stitcher->onShutdown(*c, now_ns);
    table_.erase(c);
  }
}

}  // namespace sonde
