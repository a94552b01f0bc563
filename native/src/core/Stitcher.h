// One per protocol: cuts a connection's message boundaries into exchanges
// (pairing, pipelining or streams, where each message ends), hands each
// request to the linker as it starts, and writes finished exchanges out.
// ConnTracker owns the connection table and calls a connection's stitcher
// for its events; per-connection state lives in Connection::state.
//
// A stitcher may hold any number of exchanges per connection: HTTP/1 pairs
// them in order, HTTP/2 by stream id, several open at once.
#pragma once

#include <cstdint>

#include "../../../bpf/shared/events.h"
#include "ConnectionTable.h"
#include "ExchangeRecord.h"

namespace sonde {

// The first chunk of a message in one direction, as the kernel reported it.
struct MessageStart {
  const sonde_event_header& hdr;
  // The message before it on this connection, when nothing was lost in
  // between (`prev_applies`): its end time and byte count.
  const sonde_prev_message& prev;
  bool prev_applies;
  const uint8_t* payload;
  uint32_t payload_bytes;
  // An egress HTTP/1 request's: what the writing thread was serving
  // (hdr.cause_fd resolved). Empty for every other message start.
  const CallbackContext& cause;
};

// More bytes of the head of message hdr.msg_seq.
struct MessageContinue {
  const sonde_event_header& hdr;
  const uint8_t* payload;
  uint32_t payload_bytes;
};

// The frames one syscall moved in one direction of a framed protocol
// (HTTP/2), as the kernel's frame walk left them: sonde_h2_frames_event.
struct FramesChunk {
  const sonde_event_header& hdr;
  uint8_t flags;                // enum sonde_h2_frames_flags
  uint16_t first_frame_offset;  // 0xffff: no frame header starts in payload
  const uint8_t* payload;
  uint32_t payload_bytes;
  // Egress: what the writing thread was serving (hdr.cause_fd resolved).
  const CallbackContext& cause;
};

class Stitcher {
 public:
  virtual ~Stitcher() = default;

  virtual Protocol protocol() const = 0;

  virtual void onMessageStart(Connection& c, const MessageStart& m) = 0;
  // False when the bytes are not the continuation of a head it is
  // following (a stale or unexpected event): the connection is not touched.
  virtual bool onContinue(Connection& c, const MessageContinue& m) = 0;
  // Frames of a connection whose protocol the kernel walks frame by frame.
  virtual void onFrames(Connection& /*c*/, const FramesChunk& /*f*/) {}
  // Boundary events of the connection were lost (ring buffer full): what is
  // in flight can no longer be paired with certainty, and is dropped.
  virtual void onEventsLost(Connection& c) = 0;
  // close(): `last` is the message open at that moment, `last_applies`
  // false when messages were lost before it. Every exchange still held is
  // written out; the connection is erased afterwards.
  virtual void onClose(Connection& c, const sonde_prev_message& last, bool last_applies) = 0;
  // Another connection took the fd without a close being seen, or the
  // process exited: write out what is held, flagged ClosedBeforeResponse
  // where the response is missing.
  virtual void onGone(Connection& c, bool process_exited) = 0;
  // Time passes: responses that went quiet may be over.
  virtual void onTick(Connection& c, uint64_t now_ns) = 0;
  // About once a second, after onTick: requests that waited too long.
  virtual void onTimeoutScan(Connection& c, uint64_t now_ns) = 0;
  // Shutdown: write out responses in flight as far as known, drop the rest.
  virtual void onShutdown(Connection& c, uint64_t now_ns) = 0;
  // Dropped without writing anything (table full).
  virtual void onEvicted(Connection& c) = 0;
};

}  // namespace sonde
