// The addon's reading of gRPC calls (EncodedSpans.h): the meaning is
// src/protocols/grpc/describe.ts's, reached through the HTTP/2 describer.
// It encodes a stream only when every header field of it is known (no
// HPACK entry from before sonde came, no lost block, no reset), the
// request says it is gRPC by its content-type, its :path names a method,
// and the response carries a grpc-status. Plain HTTP/2 streams are
// Http2Spans.h's; every other HTTP/2 record (calls inferred by shape,
// bytes above 0x7f, a percent-encoded grpc-message) is left to JavaScript.
#pragma once

#include <cstddef>
#include <cstdint>

#include "EncodedSpans.h"

namespace sonde {

struct ExchangeRecord;

// Appends the entry of the HTTP/2 record at `rec` (its header already read
// into `x`), when it is a gRPC call this reading takes.
bool encodeGrpcSpan(const uint8_t* rec, const ExchangeRecord& x, uint32_t record_offset, EncodedBytes& out);

}  // namespace sonde
