// Finds a W3C traceparent header in captured HTTP/1 request bytes. It lives
// here rather than in the TypeScript parsers because the correlator must
// know a server span's trace id at the moment the request starts, before
// any outgoing call made while serving it inherits that id.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sonde {

// sonde's own bit in a context's trace flags: the trace's context came from
// a traceparent header. Every span linked under that request inherits it
// with the flags, so the exporters' parent-based sampler
// (src/pipeline/TraceSampler.ts) can follow the caller's sampled flag for
// the whole trace. Masked off wherever flags are exported (W3C defines no
// use for the bit).
constexpr uint8_t kTraceFlagFromTraceparent = 0x80;

struct TraceparentValue {
  uint8_t trace_id[16];
  uint8_t parent_span_id[8];
  uint8_t trace_flags;
};

// True when a valid version-00 (or later, parsed by the 00 rules) traceparent
// header is found among the complete header lines of `bytes`.
bool findTraceparent(const uint8_t* bytes, size_t len, TraceparentValue* out);

}  // namespace sonde
