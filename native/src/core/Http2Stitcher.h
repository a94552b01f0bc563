// HTTP/2 (and gRPC over it): one exchange per stream, from the request's
// first HEADERS to the END_STREAM of the response, RST_STREAM or GOAWAY.
// The kernel walks each direction frame by frame (bpf/lib/http2_frames.bpf.h)
// and sends frame headers with every payload but DATA's; here a FrameReader
// per direction puts header blocks back together and an HpackDecoder per
// direction decodes them. Decoded fields travel to the describer as text
// lines (HTTP2_PAYLOAD in ExchangeRecord.h).
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "Exchange.h"
#include "RecordWriter.h"
#include "Stitcher.h"
#include "TraceLinker.h"
#include "TrackerShared.h"
#include "http2/FrameReader.h"
#include "http2/HpackDecoder.h"

namespace sonde {

class Http2Stitcher : public Stitcher {
 public:
  // `peer_traced`: whether a connection with this tuple (the peer's view) is
  // followed on this host, i.e. whether a client context may be on its way.
  using PeerTraced = std::function<bool(const ConnTuple&)>;
  Http2Stitcher(const TrackerOptions& options, TraceLinker& linker, RecordWriter& writer, TrackerCounters& counters,
                PeerTraced peer_traced);

  Protocol protocol() const override { return Protocol::Http2; }

  void onMessageStart(Connection& c, const MessageStart& m) override;
  bool onContinue(Connection&, const MessageContinue&) override { return false; }
  void onFrames(Connection& c, const FramesChunk& f) override;
  void onEventsLost(Connection& c) override;
  void onClose(Connection& c, const sonde_prev_message& last, bool last_applies) override;
  void onGone(Connection& c, bool process_exited) override;
  void onTick(Connection&, uint64_t) override {}
  void onTimeoutScan(Connection& c, uint64_t now_ns) override;
  void onShutdown(Connection& c, uint64_t now_ns) override;
  void onEvicted(Connection& c) override;

 private:
  struct Stream : Exchange {
    bool request_headers_seen = false;
    bool request_ended = false;
    bool response_headers_seen = false;  // a final (non-1xx) response
    bool response_ended = false;         // END_STREAM seen; written once the request is too
    bool has_trailers = false;
    bool fields_predate_sonde = false;  // some fields' HPACK entries were inserted before we came
    CallbackContext cause;  // client: what the thread that wrote its HEADERS was serving
    bool cause_is_this_connection = false;
    uint64_t last_activity_ns = 0;
  };
  struct Direction {
    std::unique_ptr<http2::FrameReader> reader;
    std::unique_ptr<http2::HpackDecoder> decoder;
    // Frame boundaries were lost: skip bytes until an event says where the
    // next frame header starts.
    bool awaiting_sync = true;
    uint32_t last_seq = 0;  // hdr.msg_seq of this direction's latest frames event
  };
  struct ConnState : StitcherState {
    std::array<Direction, 2> dirs;  // [direction - 1]: ingress, egress
    std::map<uint32_t, std::unique_ptr<Stream>> streams;
    bool mid_life = false;  // joined after the preface: HPACK state began before us
    // SETTINGS_HEADER_TABLE_SIZE each direction's receiver advertised
    // ([direction - 1]; 0 while none was seen), for the decoders made after
    // it: a direction's first frames often come after its peer's SETTINGS.
    std::array<uint32_t, 2> advertised_table_bytes{};
    std::array<bool, 2> table_bytes_advertised{};
    // Server: the streams whose request frames the frames event being read
    // carried (at most two kept: one names the stream the read serves).
    std::array<uint32_t, 2> streams_read{};
    uint8_t streams_read_count = 0;
  };
  class Sink;
  friend class Sink;

  static ConnState& stateOf(Connection& c);
  void resetDirection(ConnState& s, int d, bool mid_life);
  static std::unique_ptr<http2::HpackDecoder> newDecoder(const ConnState& s, int d, bool mid_life);
  // A decoded header block from direction `d` on its stream.
  void onHeaders(Connection& c, ConnState& s, int d, const http2::HeaderBlock& block, const FramesChunk& f);
  void onData(Connection& c, ConnState& s, int d, uint32_t stream_id, uint32_t bytes, bool end_stream, uint64_t ts);
  void onReset(Connection& c, ConnState& s, uint32_t stream_id, uint32_t error_code, uint64_t ts);
  void onGoaway(Connection& c, ConnState& s, int d, uint32_t last_stream_id, uint32_t error_code, uint64_t ts);
  // Which direction carries requests, once the connection's role is known.
  int requestDirection(const Connection& c) const;
  Stream* openStream(Connection& c, ConnState& s, uint32_t stream_id);
  void link(Connection& c, Stream* x);
  // Server: a read carried request frames of stream `stream_id`.
  static void noteStreamRead(ConnState& s, uint32_t stream_id);
  // Server: after a read, what the calls made in its callbacks serve: the
  // one stream it carried request frames of, if linked by then.
  void noteCallbacks(Connection& c, ConnState& s);
  // The response's END_STREAM: the stream is written out, or, on a client
  // whose request event has not come yet, once it does.
  void endResponse(Connection& c, ConnState& s, uint32_t stream_id);
  void finish(Connection& c, ConnState& s, uint32_t stream_id);
  void writeOutAll(Connection& c, ConnState& s, uint8_t flag_without_response, uint8_t flag_with_response);
  void abandonAll(Connection& c, ConnState& s);

  TrackerOptions options_;
  TraceLinker& linker_;
  RecordWriter& writer_;
  TrackerCounters& counters_;
  PeerTraced peer_traced_;
};

}  // namespace sonde
