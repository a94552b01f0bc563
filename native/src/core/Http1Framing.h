// Where an HTTP/1.x message ends, from the bytes the kernel captured at its
// start: the head's length and how its body is framed (RFC 9112 §6). The
// correlator uses it to cut pipelined messages apart and to tell when a
// response is over without waiting for the connection to go quiet.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sonde {

enum class BodyFraming : uint8_t {
  Unknown,     // the head did not end inside the captured bytes
  None,        // no body: HEAD, 1xx, 204, 304, or a request without length
  Length,      // Content-Length
  Chunked,     // Transfer-Encoding: chunked
  UntilClose,  // a response without length: the body ends at close
};

struct Http1Head {
  bool complete = false;        // the blank line ending the head was captured
  uint32_t head_bytes = 0;      // start line, header lines and the blank line
  BodyFraming framing = BodyFraming::Unknown;
  uint64_t content_length = 0;  // with BodyFraming::Length
  uint16_t status = 0;          // responses only
};

bool looksLikeRequestStart(const uint8_t* p, size_t n);
bool looksLikeResponseStart(const uint8_t* p, size_t n);

Http1Head parseRequestHead(const uint8_t* p, size_t n);
// `request_is_head`: the response answers a HEAD request (no body whatever
// the headers say).
Http1Head parseResponseHead(const uint8_t* p, size_t n, bool request_is_head);

// Length of a whole message (head and body) starting at p, when it can be
// told from the n captured bytes: head plus Content-Length (the body may lie
// past the capture), or a chunked body whose last chunk is captured.
// 0 when it cannot.
uint64_t framedMessageBytes(const Http1Head& head, const uint8_t* p, size_t n);

// Whether the last bytes of a chunked body's latest chunk end it: the
// zero-size chunk, then optional trailer fields, then the blank line.
// `whole_chunk`: tail holds the entire syscall's bytes, so its first byte
// starts a line.
bool endsChunkedBody(const uint8_t* tail, size_t n, bool whole_chunk);

}  // namespace sonde
