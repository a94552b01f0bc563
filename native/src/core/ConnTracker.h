// Connection-level correlation: turns the kernel's message-boundary events
// into finished exchanges with their trace context. It dispatches each event
// to the connection table (identity, role, eviction), to the stitcher of the
// connection's protocol (message boundaries, pairing), which hands requests
// to the linker (trace context) and finished exchanges to the record writer.
// Knows nothing of the kernel API, of Node-API or of OpenTelemetry, so it is
// driven the same way by the ring-buffer thread and by the replay tests
// (synthetic events, explicit clock).
#pragma once

#include <cstdint>
#include <vector>

#include "../../../bpf/shared/events.h"
#include "ConnectionTable.h"
#include "Http1Stitcher.h"
#include "Http2Stitcher.h"
#include "RecordWriter.h"
#include "TraceLinker.h"
#include "TrackerShared.h"

namespace sonde {

class ConnTracker {
 public:
  ConnTracker(const TrackerOptions& options, CurrentMessageLookup lookup, uint64_t id_seed = 0);
  ~ConnTracker();
  ConnTracker(const ConnTracker&) = delete;
  ConnTracker& operator=(const ConnTracker&) = delete;

  // One ring-buffer record, exactly as the kernel wrote it.
  void onEvent(const uint8_t* data, size_t len);
  // Timeouts and quiet responses; `now_ns` is CLOCK_MONOTONIC.
  void onTick(uint64_t now_ns);
  // Shutdown: closes out every response in flight, abandons the rest.
  void finishAll(uint64_t now_ns);

  // Serialized ExchangeRecords produced since the last call.
  bool hasOutput() const { return !writer_.empty(); }
  size_t outputBytes() const { return writer_.bytes(); }
  void takeOutput(std::vector<uint8_t>* out) { writer_.take(out); }
  const uint8_t* outputData() const { return writer_.data(); }
  void dropOutputFront(size_t n) { writer_.dropFront(n); }

  const TrackerCounters& counters() const { return counters_; }

 private:
  void onMessageStart(const sonde_msg_start_event& ev, const uint8_t* payload, uint32_t payload_len);
  void onMessageContinue(const sonde_msg_continue_event& ev, const uint8_t* payload, uint32_t payload_len);
  void onH2Frames(const sonde_h2_frames_event& ev, const uint8_t* payload, uint32_t payload_len);
  void onClose(const sonde_close_event& ev);
  void onProcessExit(uint32_t pid);
  // The stitcher that follows a connection whose first message is of this
  // class; nullptr while the class says nothing. PROTOCOL_LIST: a new
  // protocol's stitcher is chosen here.
  Stitcher* stitcherFor(uint8_t msg_class);
  // The connection is over without a close event (fd reused, process
  // exited): what it holds is written out; the caller erases it.
  void retire(Connection& c, bool process_exited);
  void forgetClientIds(const Connection& c);
  // What the thread of an egress event or a connect was serving: the
  // callbacks of the connection it last read, when the table holds it.
  CallbackContext causeOf(const sonde_event_header& hdr);

  TrackerOptions options_;
  CurrentMessageLookup lookup_;
  TrackerCounters counters_;
  RecordWriter writer_;
  TraceLinker linker_;
  Http1Stitcher http1_;
  Http2Stitcher http2_;
  ConnectionTable table_;
  uint64_t last_timeout_scan_ns_ = 0;
};

}  // namespace sonde
