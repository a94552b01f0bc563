// The addon's reading of plain HTTP/2 streams, those that are not gRPC
// calls (EncodedSpans.h): the meaning is src/protocols/http2/describe.ts's.
// It encodes a stream only when every header field of it is known (no
// HPACK entry from before sonde came, no lost block, no reset), a
// content-type says it is not gRPC, the method is one of
// kEncodedSpanMethods, :scheme is the one the connection implies, the
// :path is origin-form with a query exported as it is, and :status is
// three digits; every other HTTP/2 record is left to JavaScript.
#pragma once

#include <cstddef>
#include <cstdint>

#include "EncodedSpans.h"

namespace sonde {

struct ExchangeRecord;

// Appends the entry of the HTTP/2 record at `rec` (its header already read
// into `x`), when it is a plain stream this reading takes.
bool encodeHttp2Span(const uint8_t* rec, const ExchangeRecord& x, uint32_t record_offset, EncodedBytes& out);

}  // namespace sonde
