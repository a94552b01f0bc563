#include "HpackDecoder.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>

namespace sonde {
namespace http2 {

namespace {

constexpr uint64_t kStaticEntries = 61;  // RFC 7541 Appendix A
constexpr uint64_t kEntryOverheadBytes = 32;  // RFC 7541 §4.1
constexpr uint32_t kDefaultTableBytes = 4096;  // RFC 9113 §6.5.2

// §5.1: an integer with an N-bit prefix. Values past 2^32 are refused: no
// index or length of a bounded decoder gets near them.
bool readInt(const uint8_t*& p, const uint8_t* end, int prefix_bits, uint64_t* out) {
  if (p >= end) return false;
  uint64_t max_prefix = (1u << prefix_bits) - 1;
  uint64_t v = *p++ & max_prefix;
  if (v < max_prefix) {
    *out = v;
    return true;
  }
  for (int shift = 0; shift <= 28; shift += 7) {
    if (p >= end) return false;
    uint8_t b = *p++;
    v += uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return v <= 0xffffffffu;
    }
  }
  return false;
}

struct StringRef {
  const uint8_t* start = nullptr;  // the whole §5.2 representation, H bit and length included
  size_t size = 0;
  bool huffman = false;
  const uint8_t* octets = nullptr;
  size_t length = 0;
};

bool readString(const uint8_t*& p, const uint8_t* end, StringRef* s) {
  s->start = p;
  if (p >= end) return false;
  s->huffman = *p & 0x80;
  uint64_t n;
  if (!readInt(p, end, 7, &n) || n > uint64_t(end - p)) return false;
  s->octets = p;
  s->length = size_t(n);
  p += n;
  s->size = size_t(p - s->start);
  return true;
}

// One representation of RFC 7541 §6.
struct Representation {
  enum Kind : uint8_t { kIndexed, kLiteral, kSizeUpdate } kind = kIndexed;
  bool incremental = false;    // §6.2.1: inserts into the dynamic table
  bool never_indexed = false;  // §6.2.3
  uint64_t index = 0;          // field (kIndexed) or name (kLiteral, 0 = new name) index; size (kSizeUpdate)
  StringRef name, value;
};

bool readRepresentation(const uint8_t*& p, const uint8_t* end, Representation* r) {
  uint8_t b = *p;
  *r = Representation();
  if (b & 0x80) {
    r->kind = Representation::kIndexed;
    return readInt(p, end, 7, &r->index) && r->index != 0;  // §6.1: index 0 is an error
  }
  if ((b & 0xe0) == 0x20) {
    r->kind = Representation::kSizeUpdate;
    return readInt(p, end, 5, &r->index);
  }
  r->kind = Representation::kLiteral;
  int prefix_bits = 4;
  if ((b & 0xc0) == 0x40) {
    r->incremental = true;
    prefix_bits = 6;
  } else if ((b & 0xf0) == 0x10) {
    r->never_indexed = true;
  }
  if (!readInt(p, end, prefix_bits, &r->index)) return false;
  if (r->index == 0 && !readString(p, end, &r->name)) return false;
  return readString(p, end, &r->value);
}

}  // namespace

const char* hpackStatusName(HpackStatus s) {
  switch (s) {
    case HpackStatus::kOk: return "ok";
    case HpackStatus::kUnknownDynamicEntry: return "unknownDynamicEntry";
    case HpackStatus::kError: return "error";
    case HpackStatus::kBroken: return "broken";
  }
  return "unknown";
}

struct HpackDecoder::Walk {
  bool unknown_refs = false;   // refers past the entries we know
  bool changes_table = false;  // inserts or resizes
  bool clears_table = false;   // a size update to 0: every older entry is gone (§4.3)
};

HpackDecoder::HpackDecoder(const HpackOptions& options) : options_(options) {
  options_.max_table_bytes = std::min(options_.max_table_bytes, options_.table_bytes_ceiling);
  if (nghttp2_hd_inflate_new(&inflater_) != 0 || nghttp2_hd_inflate_new(&scratch_) != 0) {
    broken_ = true;
    return;
  }
  // A table below the 4096-byte default makes nghttp2 demand a size update
  // at the start of the next block (§4.2). Mid-life, the peer sent it long
  // ago, so keep nghttp2's larger bound: laxer, never wrong.
  if (options_.mid_life && options_.max_table_bytes < kDefaultTableBytes) return;
  if (nghttp2_hd_inflate_change_table_size(inflater_, options_.max_table_bytes) != 0) broken_ = true;
}

HpackDecoder::~HpackDecoder() {
  if (inflater_) nghttp2_hd_inflate_del(inflater_);
  if (scratch_) nghttp2_hd_inflate_del(scratch_);
}

void HpackDecoder::setMaxTableBytes(uint32_t n) {
  options_.max_table_bytes = std::min(n, options_.table_bytes_ceiling);
  if (!broken_ && !desynchronised_ && nghttp2_hd_inflate_change_table_size(inflater_, options_.max_table_bytes) != 0)
    broken_ = true;
}

size_t HpackDecoder::dynamicEntries() const { return nghttp2_hd_inflate_get_num_table_entries(inflater_) - kStaticEntries; }

void HpackDecoder::keep(DecodedBlock* out, HeaderField&& f, size_t* decoded_bytes) {
  size_t n = f.name.size() + f.value.size();
  if (out->fields.size() >= options_.max_fields || *decoded_bytes + n > options_.max_decoded_bytes) {
    out->fields_dropped++;
    return;
  }
  *decoded_bytes += n;
  out->fields.push_back(std::move(f));
}

bool HpackDecoder::inflate(const uint8_t* in, size_t len, DecodedBlock* out) {
  size_t decoded_bytes = 0;
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, len, 1);
    if (rv < 0) return false;
    in += rv;
    len -= size_t(rv);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      HeaderField f;
      f.name.assign(reinterpret_cast<const char*>(nv.name), nv.namelen);
      f.value.assign(reinterpret_cast<const char*>(nv.value), nv.valuelen);
      f.never_indexed = nv.flags & NGHTTP2_NV_FLAG_NO_INDEX;
      keep(out, std::move(f), &decoded_bytes);
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_);
      return true;
    }
    if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && len == 0) return false;
  }
}

// nghttp2 keeps its Huffman decoder private (nghttp2_hd_huff_decode is not
// exported by libnghttp2.so), so a lone string goes through an inflater of
// its own as the value of a "literal without indexing, new name" field
// (§6.2.2), which touches no table.
bool HpackDecoder::huffmanDecode(const uint8_t* str, size_t len, std::string* out) {
  std::vector<uint8_t> block;
  block.reserve(len + 3);
  block.push_back(0x00);
  block.push_back(0x01);
  block.push_back('x');
  block.insert(block.end(), str, str + len);
  nghttp2_nv nv;
  int flags = 0;
  ssize_t rv = nghttp2_hd_inflate_hd2(scratch_, &nv, &flags, block.data(), block.size(), 1);
  if (rv >= 0 && (flags & NGHTTP2_HD_INFLATE_EMIT)) {
    out->assign(reinterpret_cast<const char*>(nv.value), nv.valuelen);
    int final_flags = 0;
    rv = nghttp2_hd_inflate_hd2(scratch_, &nv, &final_flags, block.data() + rv, block.size() - size_t(rv), 1);
    if (rv >= 0 && (final_flags & NGHTTP2_HD_INFLATE_FINAL)) {
      nghttp2_hd_inflate_end_headers(scratch_);
      return true;
    }
  }
  // An inflater that failed stays failed: start a fresh one.
  nghttp2_hd_inflate_del(scratch_);
  scratch_ = nullptr;
  if (nghttp2_hd_inflate_new(&scratch_) != 0) {
    scratch_ = nullptr;
    broken_ = true;
  }
  return false;
}

// Which entries a block refers to, before nghttp2 sees it: nghttp2 fails a
// block that names an index it does not hold, and a failed inflater stays
// failed, so a block that needs entries from before attach must not reach it.
bool HpackDecoder::scan(const uint8_t* block, size_t len, Walk* walk) {
  const uint8_t* p = block;
  const uint8_t* end = block + len;
  uint64_t known = dynamicEntries();
  // An index past what a full table could hold is an error, not a gap.
  uint64_t possible = known + options_.max_table_bytes / kEntryOverheadBytes;
  bool before_fields = true;
  while (p < end) {
    Representation r;
    if (!readRepresentation(p, end, &r)) return false;
    if (r.kind == Representation::kSizeUpdate) {
      // §4.2: size updates come first in a block.
      if (!before_fields || r.index > options_.max_table_bytes) return false;
      walk->changes_table = true;
      if (r.index == 0) walk->clears_table = true;
      continue;
    }
    before_fields = false;
    uint64_t idx = r.index;
    if (idx > kStaticEntries + known) {
      if (idx > kStaticEntries + possible) return false;
      walk->unknown_refs = true;
    }
    if (r.incremental) {
      walk->changes_table = true;
      known++;
      possible++;
    }
  }
  return true;
}

// The block's fields without nghttp2's state machine: static entries,
// literals, and dynamic entries while our table is known to match the
// peer's; the others are marked unknown.
bool HpackDecoder::walkDecode(const uint8_t* block, size_t len, DecodedBlock* out) {
  const uint8_t* p = block;
  const uint8_t* end = block + len;
  size_t table_entries = desynchronised_ ? kStaticEntries : nghttp2_hd_inflate_get_num_table_entries(inflater_);
  size_t decoded_bytes = 0;
  auto entry = [&](uint64_t idx) -> const nghttp2_nv* {
    if (idx > table_entries) return nullptr;
    return nghttp2_hd_inflate_get_table_entry(idx <= kStaticEntries ? scratch_ : inflater_, size_t(idx));
  };
  auto str = [&](const StringRef& s, std::string* to) {
    if (!s.huffman) {
      to->assign(reinterpret_cast<const char*>(s.octets), s.length);
      return true;
    }
    return scratch_ && huffmanDecode(s.start, s.size, to);
  };
  while (p < end) {
    Representation r;
    if (!readRepresentation(p, end, &r)) return false;
    if (r.kind == Representation::kSizeUpdate) continue;
    HeaderField f;
    f.never_indexed = r.never_indexed;
    if (r.kind == Representation::kIndexed) {
      if (const nghttp2_nv* nv = entry(r.index)) {
        f.name.assign(reinterpret_cast<const char*>(nv->name), nv->namelen);
        f.value.assign(reinterpret_cast<const char*>(nv->value), nv->valuelen);
      } else {
        f.name_unknown = f.value_unknown = true;
      }
    } else {
      if (r.index == 0) {
        if (!str(r.name, &f.name)) return false;
      } else if (const nghttp2_nv* nv = entry(r.index)) {
        f.name.assign(reinterpret_cast<const char*>(nv->name), nv->namelen);
      } else {
        f.name_unknown = true;
      }
      if (!str(r.value, &f.value)) return false;
    }
    if (f.name_unknown) counters_.fields_unknown++;
    keep(out, std::move(f), &decoded_bytes);
  }
  return true;
}

namespace {
// Fields a request or response block of gRPC or a browser usually holds.
constexpr size_t kUsualFieldsPerBlock = 16;
}  // namespace

DecodedBlock HpackDecoder::decode(const uint8_t* block, size_t len) {
  DecodedBlock out;
  if (broken_) {
    out.status = HpackStatus::kBroken;
    return out;
  }
  counters_.blocks++;
  // Room for a usual block at once: grown from empty, the vector moved its
  // fields four times a block (4 % of the reader thread's samples under
  // h2load against a node h2c server, in perf).
  out.fields.reserve(kUsualFieldsPerBlock);
  auto fail = [&]() {
    broken_ = true;
    counters_.errors++;
    out.fields.clear();
    out.status = HpackStatus::kError;
    return std::move(out);
  };
  auto unknownIfAny = [&]() {
    for (const HeaderField& f : out.fields)
      if (f.name_unknown) {
        out.status = HpackStatus::kUnknownDynamicEntry;
        counters_.blocks_with_unknown_entries++;
        break;
      }
    return std::move(out);
  };
  if (!options_.mid_life && !desynchronised_) return inflate(block, len, &out) ? std::move(out) : fail();

  Walk walk;
  if (!scratch_ || !scan(block, len, &walk)) return fail();
  if (desynchronised_ && walk.clears_table) {
    // §4.3: a table emptied by a size update of 0 holds nothing we missed.
    nghttp2_hd_inflate_del(inflater_);
    inflater_ = nullptr;
    if (nghttp2_hd_inflate_new(&inflater_) != 0 ||
        nghttp2_hd_inflate_change_table_size(inflater_, options_.max_table_bytes) != 0) {
      inflater_ = nullptr;
      return fail();
    }
    desynchronised_ = false;
    walk.unknown_refs = false;
  }
  if (!desynchronised_ && !walk.unknown_refs) {
    if (inflate(block, len, &out)) {
      if (walk.clears_table) options_.mid_life = false;
      return out;
    }
    // The scan counts insertions but not evictions. If the peer's table is
    // larger than we were told (SETTINGS sent before attach), nghttp2 evicts
    // entries the peer still holds and fails on them: a gap, not an error.
    // The walk below still fails on what is malformed in itself.
    out.fields.clear();
    out.fields_dropped = 0;
    walk.changes_table = true;
  }
  if (!desynchronised_ && walk.changes_table) {
    // The peer inserted into a table whose older part we lack: indices
    // shift by entries we cannot place. Stop trusting dynamic lookups.
    desynchronised_ = true;
    counters_.desynchronised++;
  }
  if (!walkDecode(block, len, &out)) return fail();
  return unknownIfAny();
}

}  // namespace http2
}  // namespace sonde
