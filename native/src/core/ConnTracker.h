// Connection-level correlation: turns the kernel's message-boundary events
// into finished request/response exchanges, and decides each exchange's
// trace context. Knows nothing of the kernel API, of Node-API or of
// OpenTelemetry, so it is driven the same way by the ring-buffer thread and
// by the replay tests (synthetic events, explicit clock).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "../../../bpf/shared/events.h"
#include "ExchangeRecord.h"
#include "Http1Framing.h"
#include "IdSource.h"

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
  size_t max_self_tuples = 4096;
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
  std::atomic<uint64_t> links_ambiguous{0};        // client call with >1 open server request on its thread
  std::atomic<uint64_t> self_connections_ignored{0};
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

struct Endpoint4 {
  std::array<uint8_t, 16> local_addr, remote_addr;
  uint16_t local_port, remote_port;
  bool operator==(const Endpoint4& o) const {
    return local_port == o.local_port && remote_port == o.remote_port &&
           local_addr == o.local_addr && remote_addr == o.remote_addr;
  }
  Endpoint4 mirrored() const { return {remote_addr, local_addr, remote_port, local_port}; }
};
struct Endpoint4Hash {
  size_t operator()(const Endpoint4& e) const;
};

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
  bool hasOutput() const { return !output_.empty(); }
  size_t outputBytes() const { return output_.size(); }
  void takeOutput(std::vector<uint8_t>* out);

  const TrackerCounters& counters() const { return counters_; }

 private:
  struct Conn;
  struct Message {
    uint32_t seq = 0;
    uint32_t tid = 0;
    uint64_t start_ns = 0;
    uint64_t last_ns = 0;
    uint64_t bytes = 0;
    // Bytes of the same kernel message that belong to the messages before
    // this one (several pipelined messages in one chunk).
    uint64_t group_offset = 0;
    std::string payload;
  };
  struct Exchange {
    Message request;
    Message response;
    bool has_response = false;
    uint8_t flags = 0;
    LinkSource link_source = LinkSource::None;
    uint8_t trace_flags = 1;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8] = {};
    Conn* conn = nullptr;
    bool context_assigned = false;
    Http1Head response_head;
    uint64_t next_check_ns = 0;  // when a quiet response is looked up again
  };
  struct ConnKey {
    uint32_t pid;
    int32_t fd;
    bool operator==(const ConnKey& o) const { return pid == o.pid && fd == o.fd; }
  };
  struct ConnKeyHash {
    size_t operator()(const ConnKey& k) const { return (uint64_t(k.pid) << 32) ^ uint32_t(k.fd); }
  };
  struct Conn {
    ConnKey key;
    uint32_t generation = 0;
    uint8_t role = 0;  // ExchangeRole, 0 until known
    bool preexisting = false;
    bool ignored = false;
    bool upgraded = false;  // a 101 response was seen
    uint16_t family = 0;
    char comm[16] = {};
    Endpoint4 tuple{};
    uint32_t last_seq = 0;
    uint64_t last_event_ns = 0;
    std::deque<std::unique_ptr<Exchange>> exchanges;  // oldest first
    Message* current = nullptr;       // message that absorbs the next summary
    Exchange* current_exchange = nullptr;
    bool current_is_response = false;
    // The request bytes of the current kernel message (start plus
    // continuations), where pipelined requests are cut apart; `cut_at` is
    // where the head of the request not yet complete begins.
    std::string request_group;
    size_t cut_at = 0;
    uint64_t group_start_ns = 0;
    uint32_t group_tid = 0;
    uint32_t group_seq = 0;
    std::list<ConnKey>::iterator lru_pos;
  };
  struct ThreadKey {
    uint32_t pid, tid;
    bool operator==(const ThreadKey& o) const { return pid == o.pid && tid == o.tid; }
  };
  struct ThreadKeyHash {
    size_t operator()(const ThreadKey& k) const { return (uint64_t(k.pid) << 32) ^ k.tid; }
  };
  struct PeerContext {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    uint64_t created_ns;
  };

  void onMessageStart(const sonde_msg_start_event& ev, const uint8_t* payload, uint32_t payload_len);
  void onMessageContinue(const sonde_msg_continue_event& ev, const uint8_t* payload, uint32_t payload_len);
  void onClose(const sonde_close_event& ev);
  void onProcessExit(uint32_t pid, uint64_t now_ns);
  void onSelfConnect(const sonde_self_connect_event& ev);

  Conn* findOrCreate(const sonde_event_header& hdr, const sonde_tuple& tuple);
  void applySummary(Conn* c, const sonde_prev_message& summary);
  Exchange* newRequest(Conn* c, uint64_t start_ns, uint32_t tid, uint32_t seq);
  // Cuts the request group from cut_at on: completes the head of the
  // request in progress and opens one exchange per further request found.
  void cutRequests(Conn* c);
  void startResponses(Conn* c, const sonde_msg_start_event& ev, const uint8_t* payload, uint32_t len);
  void assignServerContext(Conn* c, Exchange* x);
  void adoptTraceparent(Exchange* x);
  void assignClientContext(Conn* c, Exchange* x, uint32_t tid);
  void leaveEnclosingCandidates(Exchange* x);
  // Checks a quiet response against the kernel's table and its framing;
  // emits it when it is over. `final`: shutdown, emit whatever is known.
  void checkQuietResponse(Conn* c, uint64_t now_ns, bool final);
  void emit(Conn* c, Exchange* x);
  void dropExchange(Conn* c, Exchange* x);
  void closeConn(Conn* c, uint8_t pending_flag);
  void eraseConn(Conn* c);
  void touch(Conn* c, uint64_t now_ns);
  void prunePeerContexts(uint64_t now_ns);

  TrackerOptions options_;
  CurrentMessageLookup lookup_;
  IdSource ids_;
  TrackerCounters counters_;
  std::vector<uint8_t> output_;

  std::unordered_map<ConnKey, std::unique_ptr<Conn>, ConnKeyHash> conns_;
  std::list<ConnKey> lru_;  // least recently active first
  // Server exchanges whose request has started and whose response has not,
  // per thread: the candidates to parent an outgoing call on that thread.
  std::unordered_map<ThreadKey, std::vector<Exchange*>, ThreadKeyHash> open_server_requests_;
  // Client request contexts by the client's 4-tuple, waiting for the server
  // side of the same connection (same host) to start reading.
  std::unordered_map<Endpoint4, std::deque<PeerContext>, Endpoint4Hash> peer_contexts_;
  size_t peer_context_count_ = 0;
  std::unordered_map<Endpoint4, uint64_t, Endpoint4Hash> self_tuples_;
  uint64_t last_timeout_scan_ns_ = 0;
};

}  // namespace sonde
