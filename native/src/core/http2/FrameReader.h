// Incremental HTTP/2 frame reader for one direction of one connection
// (RFC 9113 §4, §6). No napi.h: testable without kernel or runtime.
//
// The kernel hands us a direction's bytes in chunks cut at syscall
// boundaries, not frame boundaries, so every field here may arrive split.
// The reader keeps only the 9-byte frame header, a few fixed payload fields
// and the header block being assembled; DATA payload is counted, never kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sonde {
namespace http2 {

// RFC 9113 §6 frame types. Values are the wire codes.
enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

enum FrameFlag : uint8_t {
  kEndStream = 0x1,  // DATA, HEADERS
  kAck = 0x1,        // SETTINGS, PING
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};

constexpr size_t kFrameHeaderBytes = 9;
constexpr size_t kClientPrefaceBytes = 24;
extern const uint8_t kClientPreface[kClientPrefaceBytes];
// SETTINGS_MAX_FRAME_SIZE's initial value and its ceiling (RFC 9113 §6.5.2).
constexpr uint32_t kDefaultMaxFrameBytes = 16384;
constexpr uint32_t kMaxFrameBytesCeiling = (1u << 24) - 1;

struct FrameHeader {
  uint32_t length = 0;  // payload bytes, 24 bits on the wire
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // reserved bit cleared
};

// A whole header block: a HEADERS or PUSH_PROMISE frame and the
// CONTINUATION frames after it, padding and priority fields removed.
struct HeaderBlock {
  uint8_t type = kHeaders;  // kHeaders or kPushPromise
  uint32_t stream_id = 0;
  uint32_t promised_stream_id = 0;  // PUSH_PROMISE only
  bool end_stream = false;          // END_STREAM of the HEADERS frame (§6.2)
  // The block was longer than the bound: `bytes` holds its first bytes only
  // and cannot be HPACK-decoded (and the decoder state after it is lost).
  bool truncated = false;
  uint64_t truncated_bytes = 0;
  const uint8_t* bytes = nullptr;  // valid only during the callback
  size_t size = 0;
};

// Why a reader stopped. A broken reader ignores the rest of the connection:
// HTTP/2 has no resynchronisation point once frame boundaries are lost.
enum class BrokenReason : uint8_t {
  kNone = 0,
  kBadPreface,
  kFrameTooLarge,           // §4.2: over SETTINGS_MAX_FRAME_SIZE
  kBadStreamId,             // §6.x: stream 0 where a stream is needed, or the reverse
  kBadLength,               // fixed-size frame of the wrong size (§6.3, §6.4, §6.5, §6.7, §6.8, §6.9)
  kBadPadding,              // §6.1, §6.2: padding as long as the payload or longer
  kUnexpectedContinuation,  // §6.10: CONTINUATION not after an open header block
  kMissingContinuation,     // §6.10: another frame inside an open header block
};
const char* brokenReasonName(BrokenReason r);

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // Every frame, known type or not, as soon as its 9-byte header is complete.
  virtual void onFrame(const FrameHeader&) {}
  virtual void onHeaderBlock(const HeaderBlock&) {}
  // data_bytes excludes the Pad Length field and the padding.
  virtual void onData(uint32_t /*stream_id*/, uint32_t /*data_bytes*/, bool /*end_stream*/) {}
  virtual void onRstStream(uint32_t /*stream_id*/, uint32_t /*error_code*/) {}
  virtual void onGoaway(uint32_t /*last_stream_id*/, uint32_t /*error_code*/) {}
  // One parameter of a SETTINGS frame (not its ACK), in wire order.
  virtual void onSetting(uint16_t /*id*/, uint32_t /*value*/) {}
};

struct FrameReaderOptions {
  // Bytes of the client preface expected before the first frame: set for the
  // client-to-server direction of a connection seen from its start.
  bool expect_client_preface = false;
  // Frames longer than this break the reader. The peer's SETTINGS (the other
  // direction) may raise it up to 2^24-1; without them we only know the
  // protocol's ceiling.
  uint32_t max_frame_bytes = kMaxFrameBytesCeiling;
  // Header blocks longer than this are reported truncated.
  uint32_t max_header_block_bytes = 64 * 1024;
  // The bytes come from the kernel's frame walk (bpf/lib/http2_frames.bpf.h),
  // not the wire: DATA frames arrive as their header alone, and of any other
  // frame at most `payload_copy_bound` payload bytes follow its header (a
  // header block frame cut there is reported truncated).
  bool data_payload_elided = false;
  uint32_t payload_copy_bound = kMaxFrameBytesCeiling;
};

struct FrameReaderCounters {
  uint64_t bytes = 0;
  uint64_t frames = 0;
  uint64_t unknown_frames_skipped = 0;
  uint64_t header_blocks = 0;
  uint64_t header_blocks_truncated = 0;
  uint64_t header_bytes_truncated = 0;
};

class FrameReader {
 public:
  explicit FrameReader(const FrameReaderOptions& options = {});

  // Feeds the next bytes of this direction. Never throws, never reads
  // outside [data, data + len); after the reader breaks it only counts.
  void feed(const uint8_t* data, size_t len, FrameSink& sink);

  bool broken() const { return broken_ != BrokenReason::kNone; }
  BrokenReason brokenReason() const { return broken_; }
  const FrameReaderCounters& counters() const { return counters_; }
  // SETTINGS_MAX_FRAME_SIZE this direction's receiver advertised.
  void setMaxFrameBytes(uint32_t n) { options_.max_frame_bytes = n > kMaxFrameBytesCeiling ? kMaxFrameBytesCeiling : n; }

 private:
  enum class State : uint8_t { kPreface, kHeader, kPayload, kBroken };

  void startFrame(FrameSink& sink);
  void prefixDone();
  void consumeBody(const uint8_t* p, size_t n, FrameSink& sink);
  void finishFrame(FrameSink& sink);
  void fail(BrokenReason r);
  bool inHeaderFamily() const { return cur_.type == kHeaders || cur_.type == kPushPromise || cur_.type == kContinuation; }

  FrameReaderOptions options_;
  FrameReaderCounters counters_;
  State state_;
  BrokenReason broken_ = BrokenReason::kNone;

  uint8_t header_[kFrameHeaderBytes];
  size_t header_have_ = 0;
  size_t preface_have_ = 0;

  FrameHeader cur_;
  uint32_t present_ = 0;  // payload bytes of cur_ that the input carries
  uint32_t pos_ = 0;  // payload bytes of cur_ consumed
  // Fixed fields before the payload's variable part (Pad Length, priority,
  // promised stream id, error codes): at most 8 bytes, GOAWAY's.
  uint8_t prefix_[8];
  uint32_t prefix_need_ = 0;
  uint32_t body_start_ = 0;
  uint32_t body_end_ = 0;
  uint32_t cut_bytes_ = 0;  // of the body (padding excluded), bytes past present_
  uint8_t setting_[6];
  size_t setting_have_ = 0;

  // The header block open since a HEADERS/PUSH_PROMISE without END_HEADERS.
  bool block_open_ = false;
  HeaderBlock block_;
  std::vector<uint8_t> block_bytes_;
};

enum class Plausible : uint8_t { kNo, kNeedMore, kYes };

struct PlausibilityOptions {
  // Which end wrote these bytes, when known: clients open odd streams and
  // never push (RFC 9113 §5.1.1, §8.4).
  enum class Sender : uint8_t { kUnknown, kClient, kServer } sender = Sender::kUnknown;
  // SETTINGS_MAX_FRAME_SIZE if the receiver's SETTINGS were seen.
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
};

// Do these bytes, taken to start at a frame boundary of a connection seen
// mid-life, look like HTTP/2 frames? Every complete 9-byte frame header in
// them must pass the checks a receiver makes before reading a payload
// (known type, flags defined for it, reserved bit clear, stream id zero or
// not as the type requires, fixed lengths, length within the bound); one
// such header at least is needed, and a Pad Length that is in reach must
// fit. kNeedMore: not even one whole header yet.
Plausible looksLikeHttp2Frames(const uint8_t* data, size_t len, const PlausibilityOptions& options = {});

// The 24-byte client preface (RFC 9113 §3.4) at the start of these bytes?
Plausible startsWithClientPreface(const uint8_t* data, size_t len);

}  // namespace http2
}  // namespace sonde
