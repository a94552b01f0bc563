#include "EncodedSpans.h"

#include <cstring>

#include "../core/ExchangeRecord.h"
#include "GrpcSpans.h"
#include "Http1Spans.h"
#include "Http2Spans.h"

namespace sonde {

size_t encodeSpans(const uint8_t* records, size_t bytes, EncodedBytes& out) {
  size_t count = 0;
  size_t offset = 0;
  // An entry takes about as many bytes as its record (keys and ids instead
  // of the record's header and response head): reserving that much at
  // once spares most of the vector's regrowth copies.
  out.reserve(out.size() + bytes + 4096);
  while (bytes - offset >= sizeof(ExchangeRecord)) {
    ExchangeRecord x;
    std::memcpy(&x, records + offset, sizeof x);
    uint64_t whole = uint64_t(sizeof x) + x.request_payload_bytes + x.response_payload_bytes;
    if (x.record_bytes != whole || whole > bytes - offset) break;  // JavaScript reports the batch as malformed
    const uint8_t* rec = records + offset;
    // PROTOCOL_LIST: one reading per protocol. An HTTP/2 stream is a gRPC
    // call or a plain stream, never both: the plain reading declines any
    // stream a content-type does not say is plain.
    bool encoded = x.protocol == uint8_t(Protocol::Http1) ? encodeHttp1Span(rec, x, uint32_t(offset), out)
                   : x.protocol == uint8_t(Protocol::Http2)
                       ? encodeGrpcSpan(rec, x, uint32_t(offset), out) || encodeHttp2Span(rec, x, uint32_t(offset), out)
                       : false;
    if (encoded) count++;
    offset += x.record_bytes;
  }
  return count;
}

}  // namespace sonde
