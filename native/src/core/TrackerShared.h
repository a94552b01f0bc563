// What the correlator's parts share: its bounds, its counters, and its
// one read of kernel state. No part keeps state outside these bounds.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "../../../bpf/shared/events.h"

namespace sonde {

struct TrackerOptions {
  // A response whose connection has been quiet this long is checked against
  // the kernel's connection table: done when its framing says so (length
  // reached, last chunk written), and closed at its last chunk as an
  // estimate when its head was not captured whole. Checked again at this
  // interval while it is still open.
  uint64_t response_quiet_ns = 100'000'000;
  // A request with no response, or a response still open and quiet, this
  // long is closed out and flagged.
  uint64_t response_timeout_ns = 30'000'000'000;
  uint64_t peer_context_ttl_ns = 10'000'000'000;  // client ids awaiting their server
  size_t max_connections = 65536;
  size_t max_pending_per_connection = 64;          // pipelined requests
  size_t max_peer_contexts = 65536;
  // Connections opened (connect) whose first request is not written yet,
  // with the request their thread served when it connected.
  size_t max_connect_contexts = 16384;
  size_t max_self_tuples = 4096;
  size_t max_streams_per_connection = 1024;       // HTTP/2 streams open at once
  // HTTP/2 header fields kept per message as text lines; fields past it are
  // decoded (HPACK needs them) but not kept.
  size_t max_header_text_bytes = 8192;
};

// Counters are written by the tracker's thread and read from JavaScript's.
struct TrackerCounters {
  std::atomic<uint64_t> events_read{0};
  std::atomic<uint64_t> events_malformed{0};
  std::atomic<uint64_t> messages_lost{0};          // gaps in per-connection msg_seq
  std::atomic<uint64_t> exchanges_emitted{0};
  std::atomic<uint64_t> exchanges_abandoned{0};    // dropped: lost events, pending overflow, shutdown
  std::atomic<uint64_t> responses_without_request{0};
  std::atomic<uint64_t> requests_timed_out{0};
  std::atomic<uint64_t> responses_incomplete{0};   // closed out before their framing said so
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> connections_evicted{0};
  std::atomic<uint64_t> connections_tracked{0};    // gauge
  // A client call with candidate parents on its thread and no evidence of
  // which one made it: left a root rather than guessed.
  std::atomic<uint64_t> links_ambiguous{0};
  std::atomic<uint64_t> links_by_cause{0};         // client calls linked by their thread's last read or connect
  std::atomic<uint64_t> connect_contexts_dropped{0};  // over max_connect_contexts: first call linked by its write alone
  std::atomic<uint64_t> self_connections_ignored{0};
  // HTTP/2
  std::atomic<uint64_t> h2_streams_dropped{0};       // over max_streams_per_connection
  std::atomic<uint64_t> h2_header_blocks_truncated{0};  // over a bound: not decoded
  std::atomic<uint64_t> h2_hpack_errors{0};          // a block broke HPACK: the decoder starts again
  std::atomic<uint64_t> h2_frame_errors{0};          // frame boundaries lost (kernel walk or reader)
  std::atomic<uint64_t> h2_headers_unknown{0};       // exchanges with fields whose HPACK entry predates sonde
  std::atomic<uint64_t> h2_frames_unmatched{0};      // frames events of a connection the table does not hold
};

// The kernel's view of a connection's current message (conn_states).
struct KernelMessage {
  uint64_t last_chunk_ns = 0;
  uint64_t total_bytes = 0;
  uint8_t tail[SONDE_TAIL_BYTES] = {};  // last bytes of the latest chunk
  uint8_t tail_bytes = 0;
};

// Reads the kernel's view of a connection's current message: used to tell
// whether a quiet response is over. Returns false when the kernel no longer
// has the connection or has moved on to another message.
using CurrentMessageLookup = std::function<bool(uint32_t pid, int32_t fd, uint32_t generation,
                                                uint32_t msg_seq, KernelMessage* out)>;

}  // namespace sonde
