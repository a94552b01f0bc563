// What the HTTP/2 encoders (gRPC calls, plain streams) read alike: the
// field lines of HTTP2_PAYLOAD (native/src/core/ExchangeRecord.h), as
// src/protocols/http2/parse.ts reads them, and the server a request was
// for, as src/protocols/http2/common.ts's serverEndpoint names it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "SpanWriter.h"

namespace sonde {

// Walks one block of HTTP2_PAYLOAD lines from `pos` up to an empty line or
// `end`, handing each field to `take(name, value)`. True when parse.ts
// would call the block complete and read it as plainly as this: every
// line "name: value" ending in CRLF (no "?" line, none that breaks the
// format), at least one field, and only ASCII. `pos` ends after the empty
// line, or at `end`; `ended_by_empty_line` says which.
template <typename Take>
bool readFieldBlock(const uint8_t* p, size_t end, size_t& pos, bool& ended_by_empty_line, Take take) {
  size_t fields = 0;
  ended_by_empty_line = false;
  while (pos < end) {
    const uint8_t* lf = static_cast<const uint8_t*>(std::memchr(p + pos, '\n', end - pos));
    if (lf == nullptr) return false;  // a cut last line
    size_t line_end = size_t(lf - p);
    if (line_end == pos || p[line_end - 1] != '\r') return false;  // a bare LF: parse.ts reads it, this does not
    line_end--;
    if (line_end == pos) {
      pos = line_end + 2;
      ended_by_empty_line = true;
      return fields > 0;
    }
    if (p[pos] == '?') return false;
    size_t separator = 0;
    for (size_t i = pos; i < line_end; i++) {
      if (p[i] >= 0x80) return false;
      if (separator == 0 && i > pos && i + 1 < line_end && p[i] == ':' && p[i + 1] == ' ') separator = i;
    }
    if (separator == 0) return false;
    take(Text{p + pos, separator - pos}, Text{p + separator + 2, line_end - separator - 2});
    fields++;
    pos = line_end + 2;
  }
  return fields > 0;
}

// parse.ts's fieldValue: the first field of a name counts.
inline void keepFirstField(Text& field, Text value) {
  if (!field.present()) field = value;
}

// grpc/describe.ts's isGrpcContentType.
inline bool isGrpcContentType(Text value) {
  return value.present() && value.n >= 16 && equalsLower(value.p, 16, "application/grpc");
}

// The server a request was for (common.ts's serverEndpoint).
struct Http2Server {
  Text address;
  uint64_t port = 0;
  // The authority as sent, when it named the server: a client's url.full
  // starts with it. Not present when the socket named the server.
  Text authority;
};

// `authority`: the request's :authority, else its Host field (present only
// when sent). `socket_address` and `socket_port`: the server end of the
// socket. False when the authority is one JavaScript reads further
// (userinfo, a bracketed IPv6 host) or too long for the entry.
bool http2Server(Text authority, Text socket_address, uint64_t socket_port, Http2Server& out);

}  // namespace sonde
