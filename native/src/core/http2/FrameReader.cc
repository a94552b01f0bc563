#include "FrameReader.h"

#include <algorithm>
#include <cstring>

namespace sonde {
namespace http2 {

const uint8_t kClientPreface[kClientPrefaceBytes] = {'P', 'R', 'I', ' ', '*', ' ', 'H', 'T', 'T', 'P', '/', '2', '.',
                                                     '0', '\r', '\n', '\r', '\n', 'S', 'M', '\r', '\n', '\r', '\n'};

namespace {

uint32_t read32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

FrameHeader parseHeader(const uint8_t* p) {
  FrameHeader h;
  h.length = (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
  h.type = p[3];
  h.flags = p[4];
  h.stream_id = read32(p + 5) & 0x7fffffffu;
  return h;
}

bool isPaddable(uint8_t type) { return type == kData || type == kHeaders || type == kPushPromise; }

// Payload bytes before the variable part, for the frame types we read.
uint32_t prefixBytes(const FrameHeader& h) {
  uint32_t pad = isPaddable(h.type) && (h.flags & kPadded) ? 1 : 0;
  switch (h.type) {
    case kData: return pad;
    case kHeaders: return pad + ((h.flags & kPriorityFlag) ? 5 : 0);
    case kPushPromise: return pad + 4;
    case kRstStream: return 4;
    case kGoaway: return 8;
    default: return 0;
  }
}

// The stream-id and length rules of RFC 9113 §6 that a frame header alone
// can break. Unknown types pass: §5.5 says to ignore them.
BrokenReason checkHeader(const FrameHeader& h) {
  bool needs_stream = false, needs_zero = false;
  switch (h.type) {
    case kData:
    case kHeaders:
    case kPriority:
    case kRstStream:
    case kPushPromise:
    case kContinuation: needs_stream = true; break;
    case kSettings:
    case kPing:
    case kGoaway: needs_zero = true; break;
    default: break;
  }
  if ((needs_stream && h.stream_id == 0) || (needs_zero && h.stream_id != 0)) return BrokenReason::kBadStreamId;
  switch (h.type) {
    case kPriority: if (h.length != 5) return BrokenReason::kBadLength; break;
    case kRstStream:
    case kWindowUpdate: if (h.length != 4) return BrokenReason::kBadLength; break;
    case kPing: if (h.length != 8) return BrokenReason::kBadLength; break;
    case kGoaway: if (h.length < 8) return BrokenReason::kBadLength; break;
    case kSettings:
      if (h.length % 6 != 0 || ((h.flags & kAck) && h.length != 0)) return BrokenReason::kBadLength;
      break;
    default: break;
  }
  if (h.length < prefixBytes(h)) return BrokenReason::kBadLength;
  return BrokenReason::kNone;
}

}  // namespace

const char* brokenReasonName(BrokenReason r) {
  switch (r) {
    case BrokenReason::kNone: return "none";
    case BrokenReason::kBadPreface: return "badPreface";
    case BrokenReason::kFrameTooLarge: return "frameTooLarge";
    case BrokenReason::kBadStreamId: return "badStreamId";
    case BrokenReason::kBadLength: return "badLength";
    case BrokenReason::kBadPadding: return "badPadding";
    case BrokenReason::kUnexpectedContinuation: return "unexpectedContinuation";
    case BrokenReason::kMissingContinuation: return "missingContinuation";
  }
  return "unknown";
}

FrameReader::FrameReader(const FrameReaderOptions& options)
    : options_(options), state_(options.expect_client_preface ? State::kPreface : State::kHeader) {
  setMaxFrameBytes(options.max_frame_bytes);
}

void FrameReader::fail(BrokenReason r) {
  broken_ = r;
  state_ = State::kBroken;
  block_open_ = false;
  std::vector<uint8_t>().swap(block_bytes_);
}

void FrameReader::feed(const uint8_t* data, size_t len, FrameSink& sink) {
  counters_.bytes += len;
  size_t i = 0;
  while (i < len) {
    switch (state_) {
      case State::kBroken: return;
      case State::kPreface:
        if (data[i] != kClientPreface[preface_have_]) {
          fail(BrokenReason::kBadPreface);
          return;
        }
        i++;
        if (++preface_have_ == kClientPrefaceBytes) state_ = State::kHeader;
        break;
      case State::kHeader: {
        size_t n = std::min(kFrameHeaderBytes - header_have_, len - i);
        std::memcpy(header_ + header_have_, data + i, n);
        header_have_ += n;
        i += n;
        if (header_have_ == kFrameHeaderBytes) startFrame(sink);
        break;
      }
      case State::kPayload: {
        if (pos_ < prefix_need_) {
          size_t n = std::min<size_t>(prefix_need_ - pos_, len - i);
          std::memcpy(prefix_ + pos_, data + i, n);
          pos_ += uint32_t(n);
          i += n;
          if (pos_ == prefix_need_) prefixDone();
        } else if (pos_ < body_end_) {
          size_t n = std::min<size_t>(body_end_ - pos_, len - i);
          consumeBody(data + i, n, sink);
          pos_ += uint32_t(n);
          i += n;
        } else {
          size_t n = std::min<size_t>(present_ - pos_, len - i);
          pos_ += uint32_t(n);
          i += n;
        }
        if (state_ == State::kPayload && pos_ == present_) finishFrame(sink);
        break;
      }
    }
  }
}

void FrameReader::startFrame(FrameSink& sink) {
  header_have_ = 0;
  cur_ = parseHeader(header_);
  if (cur_.length > options_.max_frame_bytes) return fail(BrokenReason::kFrameTooLarge);
  // §6.10: a header block is one contiguous run of frames on one stream.
  if (block_open_ && (cur_.type != kContinuation || cur_.stream_id != block_.stream_id))
    return fail(BrokenReason::kMissingContinuation);
  if (!block_open_ && cur_.type == kContinuation) return fail(BrokenReason::kUnexpectedContinuation);
  BrokenReason bad = checkHeader(cur_);
  if (bad != BrokenReason::kNone) return fail(bad);

  counters_.frames++;
  if (cur_.type > kContinuation) counters_.unknown_frames_skipped++;
  sink.onFrame(cur_);

  if (cur_.type == kHeaders || cur_.type == kPushPromise) {
    block_open_ = true;
    block_ = HeaderBlock();
    block_.type = cur_.type;
    block_.stream_id = cur_.stream_id;
    block_.end_stream = cur_.type == kHeaders && (cur_.flags & kEndStream);
    block_bytes_.clear();
  }
  pos_ = 0;
  setting_have_ = 0;
  bool elided = options_.data_payload_elided && cur_.type == kData;
  present_ = elided ? 0 : std::min(cur_.length, options_.payload_copy_bound);
  // A payload the input does not carry (elided DATA) has no prefix to read:
  // its size is the whole length, padding included.
  prefix_need_ = elided ? 0 : std::min(prefixBytes(cur_), present_);
  body_start_ = prefix_need_;
  body_end_ = elided ? cur_.length : present_;
  cut_bytes_ = cur_.length - present_;
  state_ = State::kPayload;
  if (prefix_need_ == 0 && !elided) prefixDone();
  if (state_ == State::kPayload && present_ == 0) finishFrame(sink);
}

void FrameReader::prefixDone() {
  uint32_t at = 0;
  if (isPaddable(cur_.type) && (cur_.flags & kPadded)) {
    uint32_t pad = prefix_[0];
    at = 1;
    // §6.1, §6.2, §6.6: padding may not reach into the fixed fields.
    if (pad > cur_.length - prefix_need_) return fail(BrokenReason::kBadPadding);
    // Padding sits at the end: of a cut payload, only what reaches into it goes.
    uint32_t padding_present = cut_bytes_ >= pad ? 0 : pad - cut_bytes_;
    body_end_ = present_ - padding_present;
    cut_bytes_ = cut_bytes_ >= pad ? cut_bytes_ - pad : 0;
  }
  if (cur_.type == kPushPromise) block_.promised_stream_id = read32(prefix_ + at) & 0x7fffffffu;
}

void FrameReader::consumeBody(const uint8_t* p, size_t n, FrameSink& sink) {
  if (inHeaderFamily()) {
    size_t room = options_.max_header_block_bytes - std::min<size_t>(options_.max_header_block_bytes, block_bytes_.size());
    size_t take = std::min(room, n);
    block_bytes_.insert(block_bytes_.end(), p, p + take);
    block_.truncated_bytes += n - take;
  } else if (cur_.type == kSettings) {
    for (size_t k = 0; k < n; k++) {
      setting_[setting_have_++] = p[k];
      if (setting_have_ == sizeof setting_) {
        setting_have_ = 0;
        sink.onSetting(uint16_t((setting_[0] << 8) | setting_[1]), read32(setting_ + 2));
      }
    }
  }
}

void FrameReader::finishFrame(FrameSink& sink) {
  state_ = State::kHeader;
  // Header block bytes the kernel's copy bound cut off.
  if (inHeaderFamily()) block_.truncated_bytes += cut_bytes_;
  switch (cur_.type) {
    case kData: sink.onData(cur_.stream_id, body_end_ - body_start_, cur_.flags & kEndStream); break;
    case kRstStream: sink.onRstStream(cur_.stream_id, read32(prefix_)); break;
    case kGoaway: sink.onGoaway(read32(prefix_) & 0x7fffffffu, read32(prefix_ + 4)); break;
    case kHeaders:
    case kPushPromise:
    case kContinuation:
      if (cur_.flags & kEndHeaders) {
        block_open_ = false;
        block_.truncated = block_.truncated_bytes > 0;
        block_.bytes = block_bytes_.data();
        block_.size = block_bytes_.size();
        counters_.header_blocks++;
        if (block_.truncated) {
          counters_.header_blocks_truncated++;
          counters_.header_bytes_truncated += block_.truncated_bytes;
        }
        sink.onHeaderBlock(block_);
        // Keep a small buffer for the next block; give a large one back.
        if (block_bytes_.capacity() > 4096) std::vector<uint8_t>().swap(block_bytes_);
        else block_bytes_.clear();
      }
      break;
    default: break;
  }
}

Plausible startsWithClientPreface(const uint8_t* data, size_t len) {
  size_t n = std::min(len, kClientPrefaceBytes);
  if (n == 0) return Plausible::kNeedMore;  // an empty Buffer's data may be null
  if (std::memcmp(data, kClientPreface, n) != 0) return Plausible::kNo;
  return n == kClientPrefaceBytes ? Plausible::kYes : Plausible::kNeedMore;
}

Plausible looksLikeHttp2Frames(const uint8_t* data, size_t len, const PlausibilityOptions& options) {
  // Flags each type defines (RFC 9113 §6). Receivers must ignore others, but
  // no sender we know sets them, and a stray bit is what text looks like.
  static const uint8_t kDefinedFlags[] = {0x09, 0x2d, 0x00, 0x00, 0x01, 0x0c, 0x01, 0x00, 0x00, 0x04};
  using Sender = PlausibilityOptions::Sender;
  size_t off = 0, seen = 0;
  bool block_open = false;
  uint32_t block_stream = 0;
  while (len - off >= kFrameHeaderBytes) {
    const uint8_t* p = data + off;
    FrameHeader h = parseHeader(p);
    if (h.type > kContinuation) return Plausible::kNo;
    if (h.flags & ~kDefinedFlags[h.type]) return Plausible::kNo;
    if (p[5] & 0x80) return Plausible::kNo;  // §4.1: reserved bit stays unset when sending
    if (h.length > options.max_frame_bytes) return Plausible::kNo;
    if (checkHeader(h) != BrokenReason::kNone) return Plausible::kNo;
    if (block_open != (h.type == kContinuation) || (block_open && h.stream_id != block_stream)) return Plausible::kNo;
    bool odd = h.stream_id & 1;
    if (options.sender == Sender::kClient) {
      // §5.1.1: client streams are odd; §8.4: clients never push.
      if (h.type == kPushPromise) return Plausible::kNo;
      if ((h.type == kHeaders || h.type == kData || h.type == kContinuation) && !odd) return Plausible::kNo;
    } else if (options.sender == Sender::kServer) {
      if (h.type == kPushPromise && !odd) return Plausible::kNo;
    }
    if (isPaddable(h.type) && (h.flags & kPadded) && len - off > kFrameHeaderBytes &&
        p[kFrameHeaderBytes] > h.length - prefixBytes(h))
      return Plausible::kNo;
    if (h.type == kHeaders || h.type == kPushPromise || h.type == kContinuation) {
      block_open = !(h.flags & kEndHeaders);
      block_stream = h.stream_id;
    }
    seen++;
    if (len - off - kFrameHeaderBytes < h.length) break;
    off += kFrameHeaderBytes + h.length;
  }
  return seen ? Plausible::kYes : Plausible::kNeedMore;
}

}  // namespace http2
}  // namespace sonde
