// HPACK (RFC 7541) for one direction of one HTTP/2 connection: nghttp2's
// inflater, plus a walk of the block's representations (§6) for the
// connections sonde joined mid-life, whose dynamic table began before it.
//
// Inside node, the nghttp2_* symbols bind to node's own exported copy
// (1.61 in Node 20), not to Debian's libnghttp2.so (1.52) that we link: only
// the stable public nghttp2_hd_inflate_* API is used, so either serves.
// nghttp2_hd_inflate_hd3 is newer than Debian's header, hence hd2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

struct nghttp2_hd_inflater;

namespace sonde {
namespace http2 {

struct HeaderField {
  std::string name;
  std::string value;
  // Refers to a dynamic-table entry inserted before we saw the connection:
  // the name, or both name and value, cannot be known. Never guessed.
  bool name_unknown = false;
  bool value_unknown = false;
  bool never_indexed = false;  // §6.2.3: an intermediary must not index it either
};

enum class HpackStatus : uint8_t {
  kOk,
  // Decoded except for fields that refer to dynamic entries we never saw;
  // those are in `fields` with name_unknown/value_unknown set.
  kUnknownDynamicEntry,
  // The block breaks RFC 7541 (or was cut short): the decoder is broken.
  kError,
  // The decoder broke on an earlier block; nothing is decoded any more.
  kBroken,
};
const char* hpackStatusName(HpackStatus s);

struct DecodedBlock {
  HpackStatus status = HpackStatus::kOk;
  std::vector<HeaderField> fields;
  // Fields past max_fields or max_decoded_bytes, decoded (the table needs
  // them) but not kept.
  uint32_t fields_dropped = 0;
};

struct HpackOptions {
  // SETTINGS_HEADER_TABLE_SIZE the receiver of this direction advertised;
  // 4096 is the protocol default (RFC 9113 §6.5.2).
  uint32_t max_table_bytes = 4096;
  // What setMaxTableBytes may raise it to: the memory bound per decoder.
  uint32_t table_bytes_ceiling = 64 * 1024;
  // The connection was open before sonde saw it: its dynamic table may hold
  // entries we never saw inserted.
  bool mid_life = false;
  uint32_t max_fields = 256;
  uint32_t max_decoded_bytes = 64 * 1024;
};

struct HpackCounters {
  uint64_t blocks = 0;
  uint64_t blocks_with_unknown_entries = 0;
  uint64_t fields_unknown = 0;
  uint64_t errors = 0;
  // Blocks after which our table no longer matches the peer's (an insertion
  // in a block we could not fully decode): from then on only static and
  // literal fields decode.
  uint64_t desynchronised = 0;
};

class HpackDecoder {
 public:
  explicit HpackDecoder(const HpackOptions& options = {});
  ~HpackDecoder();
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  // Decodes one whole header block (HeaderBlock::bytes). Never throws.
  DecodedBlock decode(const uint8_t* block, size_t len);
  // SETTINGS_HEADER_TABLE_SIZE seen from the receiver; capped by the ceiling.
  void setMaxTableBytes(uint32_t n);

  bool broken() const { return broken_; }
  // Our dynamic table no longer follows the peer's (see HpackCounters).
  bool desynchronised() const { return desynchronised_; }
  const HpackCounters& counters() const { return counters_; }

 private:
  struct Walk;
  bool scan(const uint8_t* block, size_t len, Walk* walk);
  bool walkDecode(const uint8_t* block, size_t len, DecodedBlock* out);
  bool huffmanDecode(const uint8_t* str, size_t len, std::string* out);
  bool inflate(const uint8_t* block, size_t len, DecodedBlock* out);
  void keep(DecodedBlock* out, HeaderField&& f, size_t* decoded_bytes);
  size_t dynamicEntries() const;

  HpackOptions options_;
  HpackCounters counters_;
  nghttp2_hd_inflater* inflater_ = nullptr;
  // Decodes single Huffman strings (see huffmanDecode); never indexes.
  nghttp2_hd_inflater* scratch_ = nullptr;
  bool broken_ = false;
  bool desynchronised_ = false;
};

}  // namespace http2
}  // namespace sonde
