// HTTP/1.x: requests and responses pair in order on a connection.
// Pipelined messages in one captured chunk are cut apart by their heads
// (Http1Framing.h); a response ends at the next message start, at close,
// or, once its connection is quiet, when the kernel's byte count or tail
// says its framing is satisfied.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "Exchange.h"
#include "Http1Framing.h"
#include "RecordWriter.h"
#include "Stitcher.h"
#include "TraceLinker.h"
#include "TrackerShared.h"

namespace sonde {

class Http1Stitcher : public Stitcher {
 public:
  Http1Stitcher(const TrackerOptions& options, TraceLinker& linker, RecordWriter& writer, TrackerCounters& counters,
                const CurrentMessageLookup& lookup);

  Protocol protocol() const override { return Protocol::Http1; }

  void onMessageStart(Connection& c, const MessageStart& m) override;
  bool onContinue(Connection& c, const MessageContinue& m) override;
  void onEventsLost(Connection& c) override;
  void onClose(Connection& c, const sonde_prev_message& last, bool last_applies) override;
  void onGone(Connection& c, bool process_exited) override;
  void onTick(Connection& c, uint64_t now_ns) override;
  void onTimeoutScan(Connection& c, uint64_t now_ns) override;
  void onShutdown(Connection& c, uint64_t now_ns) override;
  void onEvicted(Connection& c) override;

 private:
  struct Http1Exchange : Exchange {
    Http1Head response_head;
    uint64_t next_check_ns = 0;  // when a quiet response is looked up again
  };
  struct ConnState : StitcherState {
    std::deque<std::unique_ptr<Http1Exchange>> exchanges;  // oldest first
    Message* current = nullptr;  // the message that absorbs the next summary
    Http1Exchange* current_exchange = nullptr;
    bool current_is_response = false;
    bool upgraded = false;  // a 101 response was seen
    // The request bytes of the current kernel message (start plus
    // continuations), where pipelined requests are cut apart; `cut_at` is
    // where the head of the request not yet complete begins.
    std::string request_group;
    size_t cut_at = 0;
    uint64_t group_start_ns = 0;
    uint32_t group_tid = 0;
    CallbackContext group_cause;  // client: what the writing thread was serving
    bool group_cause_is_this_connection = false;
    uint32_t group_seq = 0;
  };

  static ConnState& stateOf(Connection& c);
  // The message that just ended adds its end time and bytes to the message
  // being followed; a response is then over.
  void endCurrentMessage(Connection& c, ConnState& s, const sonde_prev_message& summary);
  Http1Exchange* openExchange(Connection& c, ConnState& s, uint64_t start_ns, uint32_t tid, uint32_t seq);
  // Cuts the request group from cut_at on: completes the head of the
  // request in progress and opens one exchange per further request found.
  void cutPipelinedRequests(Connection& c, ConnState& s);
  // Pairs each response in the chunk with the oldest request still without
  // one, skipping interim (1xx) responses.
  void pairResponses(Connection& c, ConnState& s, const MessageStart& m);
  // Asks the linker for the request's trace context, before any outgoing
  // call of this request can be seen: the kernel reports the head's
  // continuations before the process acts on them.
  void linkRequest(Connection& c, ConnState& s, Http1Exchange* x, bool head_complete);
  // Checks a quiet response against the kernel's table and its framing;
  // writes it out when it is over. `final`: shutdown, write whatever is known.
  void checkQuietResponse(Connection& c, ConnState& s, uint64_t now_ns, bool final);
  void releaseFromLinker(const Connection& c, const Http1Exchange* x);
  void endInLinker(const Connection& c, Http1Exchange* x);
  void writeOut(Connection& c, ConnState& s, Http1Exchange* x);
  void writeOutAll(Connection& c, ConnState& s);
  void drop(Connection& c, ConnState& s, Http1Exchange* x);
  void abandonAll(Connection& c, ConnState& s);
  void forget(ConnState& s, Http1Exchange* x);

  TrackerOptions options_;
  TraceLinker& linker_;
  RecordWriter& writer_;
  TrackerCounters& counters_;
  const CurrentMessageLookup& lookup_;
};

}  // namespace sonde
