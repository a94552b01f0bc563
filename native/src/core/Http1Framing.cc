#include "Http1Framing.h"

#include <cstring>

namespace sonde {
namespace {

bool startsWith(const uint8_t* p, size_t n, const char* s) {
  size_t k = std::strlen(s);
  return n >= k && std::memcmp(p, s, k) == 0;
}

char lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : char(c); }

bool nameIs(const uint8_t* p, size_t n, const char* name) {
  size_t k = std::strlen(name);
  if (n != k) return false;
  for (size_t i = 0; i < k; i++)
    if (lower(p[i]) != name[i]) return false;
  return true;
}

// Where the line that starts at `i` ends: its '\n', or `end` without one.
// memchr, not a loop over bytes: header lines are tens of bytes.
size_t lineEnd(const uint8_t* p, size_t i, size_t end) {
  const void* lf = i < end ? std::memchr(p + i, '\n', end - i) : nullptr;
  return lf ? size_t(static_cast<const uint8_t*>(lf) - p) : end;
}

bool isTchar(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// One header line, [line, line_end) without its CRLF: the framing fields.
void readFramingField(const uint8_t* p, size_t line, size_t line_end, uint64_t* length, bool* has_length,
                      bool* chunked) {
  // Only two names matter, and they differ in their first letter from
  // most others: the colon is looked for in their lines alone.
  char first = lower(p[line]);
  if (first != 'c' && first != 't') return;
  const uint8_t* colon = static_cast<const uint8_t*>(std::memchr(p + line, ':', line_end - line));
  if (!colon) return;
  size_t name_len = colon - (p + line);
  const uint8_t* v = colon + 1;
  const uint8_t* v_end = p + line_end;
  while (v < v_end && (*v == ' ' || *v == '\t')) v++;
  while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) v_end--;
  if (nameIs(p + line, name_len, "content-length")) {
    uint64_t len = 0;
    bool digits = v < v_end;
    for (const uint8_t* d = v; d < v_end; d++) {
      if (*d < '0' || *d > '9' || len > (uint64_t(1) << 50)) {
        digits = false;
        break;
      }
      len = len * 10 + (*d - '0');
    }
    if (digits) {
      *has_length = true;
      *length = len;
    }
  } else if (nameIs(p + line, name_len, "transfer-encoding")) {
    // chunked must be the last coding (RFC 9112 §6.1)
    size_t k = v_end - v;
    if (k >= 7) {
      bool last_is_chunked = true;
      const char* want = "chunked";
      for (size_t j = 0; j < 7; j++)
        if (lower(v[k - 7 + j]) != want[j]) last_is_chunked = false;
      if (last_is_chunked) *chunked = true;
    }
  }
}

// The head's extent and framing headers, in one pass over its lines: the
// head ends at the first empty line ("\r\n" or a bare "\n") after the start
// line. False when it does not end inside the n captured bytes; `h` is then
// left as it was. (Finding the end and then reading the fields, two passes,
// was a fifth of the reader thread's time at saturation: perf, nginx at
// 15k req/s.)
bool readHead(const uint8_t* p, size_t n, Http1Head* h, bool* has_length, bool* chunked) {
  uint64_t length = 0;
  bool seen_length = false, seen_chunked = false;
  size_t i = lineEnd(p, 0, n) + 1;  // past the start line
  while (i < n) {
    if (p[i] == '\n' || (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')) {
      h->complete = true;
      h->head_bytes = uint32_t(p[i] == '\n' ? i + 1 : i + 2);
      if (seen_length) h->content_length = length;
      *has_length = seen_length;
      *chunked = seen_chunked;
      return true;
    }
    size_t line = i;
    size_t lf = lineEnd(p, i, n);
    if (lf >= n) return false;  // the line, and so the head, goes on past the capture
    size_t line_end = lf > line && p[lf - 1] == '\r' ? lf - 1 : lf;
    readFramingField(p, line, line_end, &length, &seen_length, &seen_chunked);
    i = lf + 1;
  }
  return false;
}

}  // namespace

bool looksLikeRequestStart(const uint8_t* p, size_t n) {
  // A method token, one space, then a target: the kernel's first-byte test
  // knows the common methods; this is the userspace check for the bytes
  // that follow another message in the same chunk.
  size_t i = 0;
  while (i < n && i < 20 && isTchar(p[i])) i++;
  return i > 0 && i < n && p[i] == ' ' && i + 1 < n && p[i + 1] != ' ';
}

bool looksLikeResponseStart(const uint8_t* p, size_t n) { return startsWith(p, n, "HTTP/1."); }


Http1Head parseRequestHead(const uint8_t* p, size_t n) {
  Http1Head h;
  bool has_length = false, chunked = false;
  if (!readHead(p, n, &h, &has_length, &chunked)) return h;
  if (chunked)
    h.framing = BodyFraming::Chunked;
  else if (has_length && h.content_length > 0)
    h.framing = BodyFraming::Length;
  else
    h.framing = BodyFraming::None;  // a request has no body without framing (RFC 9112 §6.3)
  return h;
}

Http1Head parseResponseHead(const uint8_t* p, size_t n, bool request_is_head) {
  Http1Head h;
  if (n >= 12 && looksLikeResponseStart(p, n) && p[8] == ' ' && p[9] >= '0' && p[9] <= '9' && p[10] >= '0' &&
      p[10] <= '9' && p[11] >= '0' && p[11] <= '9')
    h.status = uint16_t((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
  bool has_length = false, chunked = false;
  if (!readHead(p, n, &h, &has_length, &chunked)) return h;
  if (request_is_head || (h.status >= 100 && h.status < 200) || h.status == 204 || h.status == 304)
    h.framing = BodyFraming::None;
  else if (chunked)
    h.framing = BodyFraming::Chunked;
  else if (has_length)
    h.framing = h.content_length ? BodyFraming::Length : BodyFraming::None;
  else
    h.framing = BodyFraming::UntilClose;
  return h;
}

uint64_t framedMessageBytes(const Http1Head& head, const uint8_t* p, size_t n) {
  if (!head.complete) return 0;
  switch (head.framing) {
    case BodyFraming::None:
      return head.head_bytes;
    case BodyFraming::Length:
      return head.head_bytes + head.content_length;
    case BodyFraming::Chunked: {
      size_t i = head.head_bytes;
      for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        for (; i < n; i++, digits++) {
          uint8_t c = p[i];
          int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
          if (v < 0 || size > (uint64_t(1) << 40)) break;
          size = size * 16 + v;
        }
        if (digits == 0) return 0;
        const uint8_t* lf = i < n ? static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i)) : nullptr;
        if (!lf) return 0;  // chunk-size line (with extensions) not captured
        i = lf - p + 1;
        if (size == 0) {
          // trailer fields, then the blank line
          for (;;) {
            if (i < n && p[i] == '\n') return i + 1;
            if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n') return i + 2;
            const uint8_t* next = i < n ? static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i)) : nullptr;
            if (!next) return 0;
            i = next - p + 1;
          }
        }
        if (i + size + 2 > n) return 0;
        i += size;
        if (p[i] == '\r') i++;
        if (i >= n || p[i] != '\n') return 0;
        i++;
      }
    }
    case BodyFraming::UntilClose:
    case BodyFraming::Unknown:
      return 0;
  }
  return 0;
}

bool endsChunkedBody(const uint8_t* tail, size_t n, bool whole_chunk) {
  // Must end with the blank line ...
  if (n < 5 || tail[n - 1] != '\n' || tail[n - 2] != '\r' || tail[n - 3] != '\n' || tail[n - 4] != '\r') {
    return false;
  }
  // ... after a line "0" that starts a line, possibly followed by trailer
  // lines: find the last "0\r\n" at a line start before the final CRLF.
  for (size_t i = n - 3; i-- > 0;) {
    if (tail[i] != '0' || i + 2 >= n || tail[i + 1] != '\r' || tail[i + 2] != '\n') continue;
    bool line_start = i == 0 ? whole_chunk : tail[i - 1] == '\n';
    if (!line_start) continue;
    // Between the "0\r\n" and the end: trailer lines, each ending in CRLF,
    // none of them empty except the last.
    size_t j = i + 3;
    bool ok = true;
    while (j < n - 2) {
      const uint8_t* lf = static_cast<const uint8_t*>(std::memchr(tail + j, '\n', n - 2 - j));
      if (!lf || lf == tail + j || lf[-1] != '\r' || lf == tail + j + 1) {
        ok = false;
        break;
      }
      j = lf - tail + 1;
    }
    return ok && j == n - 2;
  }
  return false;
}

}  // namespace sonde
