#include "Http1Spans.h"

#include <cstring>

#include "../core/ExchangeRecord.h"
#include "SpanWriter.h"

namespace sonde {
namespace {

// describe.ts takes only so many field lines by name before a full scan
// (MAX_HEADERS of parse.ts); heads that long are left to it.
constexpr size_t kMaxFieldLines = 100;

}  // namespace

// redact.ts judges only parameter names in which a hint occurs, after
// percent-decoding and lower-casing. A query without '%' in which none
// occurs anywhere, names or values, has no name it could redact.
bool queryExportedAsIs(Text query) {
  if (std::memchr(query.p, '%', query.n) != nullptr) return false;
  for (const char* hint : kRedactionHints) {
    size_t m = std::strlen(hint);
    for (size_t i = 0; i + m <= query.n; i++) {
      size_t j = 0;
      while (j < m) {
        uint8_t c = query.p[i + j];
        if (c >= 'A' && c <= 'Z') c += 32;
        if (c != uint8_t(hint[j])) break;
        j++;
      }
      if (j == m) return false;
    }
  }
  return true;
}

namespace {

// No byte of [p, p + n) is a line feed or outside ASCII: eight bytes at a
// time, since a byte loop over every field line was a twentieth of the
// reader thread's time (perf, nginx at 15k req/s).
bool plainLineBytes(const uint8_t* p, size_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL, kLineFeeds = 0x0a0a0a0a0a0a0a0aULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, sizeof w);
    uint64_t x = w ^ kLineFeeds;  // a zero byte where w has a line feed
    if ((w & kHighs) != 0 || ((x - kOnes) & ~x & kHighs) != 0) return false;
  }
  for (; i < n; i++)
    if (p[i] == '\n' || p[i] >= 0x80) return false;
  return true;
}

struct RequestFacts {
  uint8_t method = 0;
  uint8_t http_minor = 0;
  Text path;
  Text query;  // present when the target has a '?': what follows it, exported as it is
  Text host;
  Text user_agent;
};

// The request head, when it is one describe.ts reads the plain way: a
// known method, an origin-form target (its query, if any, one queryExportedAsIs),
// HTTP/1.0 or 1.1, every line ending in CRLF, the whole head captured, and
// only ASCII in what becomes an attribute (JavaScript reads the head as
// latin1, and writes it as UTF-8: for ASCII both are the bytes themselves).
bool readRequest(const uint8_t* p, size_t n, RequestFacts& r) {
  size_t sp = 0;
  while (sp < n && sp <= 8 && p[sp] != ' ') sp++;
  if (sp >= n || p[sp] != ' ') return false;
  bool known = false;
  for (size_t m = 0; m < kEncodedSpanMethodCount && !known; m++) {
    if (std::strlen(kEncodedSpanMethods[m]) == sp && std::memcmp(p, kEncodedSpanMethods[m], sp) == 0) {
      r.method = uint8_t(m);
      known = true;
    }
  }
  if (!known) return false;
  size_t ts = sp + 1;
  if (ts >= n || p[ts] != '/') return false;
  size_t te = ts;
  size_t question = 0;
  while (te < n && p[te] > 0x20 && p[te] < 0x7f) {
    if (p[te] == '?' && question == 0) question = te;
    te++;
  }
  // " HTTP/1.x\r\n"
  if (te + 11 > n || std::memcmp(p + te, " HTTP/1.", 8) != 0) return false;
  uint8_t minor = p[te + 8];
  if ((minor != '0' && minor != '1') || p[te + 9] != '\r' || p[te + 10] != '\n') return false;
  r.http_minor = uint8_t(minor - '0');
  if (question == 0) {
    r.path = {p + ts, te - ts};
  } else {
    r.path = {p + ts, question - ts};
    r.query = {p + question + 1, te - question - 1};
    if (!queryExportedAsIs(r.query)) return false;
  }

  size_t pos = te + 11;
  for (size_t lines = 0;; lines++) {
    if (pos + 1 >= n) return false;  // the head's end was not captured
    if (p[pos] == '\r') return p[pos + 1] == '\n';
    if (lines >= kMaxFieldLines) return false;
    const void* cr = std::memchr(p + pos, '\r', n - pos);
    if (!cr) return false;
    size_t end = size_t(static_cast<const uint8_t*>(cr) - p);
    if (end + 1 >= n || p[end + 1] != '\n' || !plainLineBytes(p + pos, end - pos)) return false;
    const void* found = std::memchr(p + pos, ':', end - pos);
    size_t colon = found ? size_t(static_cast<const uint8_t*>(found) - p) : 0;
    if (colon > pos) {
      Text* field = equalsLower(p + pos, colon - pos, "host")         ? &r.host
                    : equalsLower(p + pos, colon - pos, "user-agent") ? &r.user_agent
                                                                      : nullptr;
      // The first of each counts (parse.ts's headerValue).
      if (field && !field->present()) {
        size_t vs = colon + 1, ve = end;
        while (vs < ve && (p[vs] == ' ' || p[vs] == '\t')) vs++;
        while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) ve--;
        field->p = p + vs;
        field->n = ve - vs;  // present, even when empty
      }
    }
    pos = end + 2;
  }
}

// The status code of a response whose status line describe.ts reads:
// "HTTP/1.x DDD" then CRLF, or SP and a reason before the line's end.
int readStatus(const uint8_t* p, size_t n) {
  if (n < 14 || std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') return -1;
  for (int i = 9; i < 12; i++)
    if (p[i] < '0' || p[i] > '9') return -1;
  int code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (code < 100) return -1;
  if (p[12] == '\r') return p[13] == '\n' ? code : -1;
  if (p[12] != ' ') return -1;
  // The line must end inside the capture, or JavaScript takes it for cut.
  return std::memchr(p + 13, '\n', n - 13) ? code : -1;
}

// describe.ts's splitHost, for the hosts it reads the plain way; false for
// a bracketed (IPv6) host or a port that is not all digits.
bool splitHost(Text host, Text& name, int& port) {
  port = -1;
  if (host.n > 0 && host.p[0] == '[') return false;
  size_t colons = 0, last = 0;
  for (size_t i = 0; i < host.n; i++)
    if (host.p[i] == ':') {
      colons++;
      last = i;
    }
  if (colons != 1) {
    name = host;
    return true;
  }
  name = {host.p, last};
  size_t digits = host.n - last - 1;
  if (digits == 0 || digits > 15) return false;
  uint64_t v = 0;
  for (size_t i = last + 1; i < host.n; i++) {
    if (host.p[i] < '0' || host.p[i] > '9') return false;
    v = v * 10 + uint64_t(host.p[i] - '0');
  }
  if (v > 0 && v < 65536) port = int(v);
  return true;
}

// describe.ts's url.full of a client request in origin form:
// scheme://authority/path?query, the port left out when it is the scheme's.
void urlFullAttribute(ProtoOut& w, bool tls, Text address, uint64_t port, Text path, Text query) {
  const char* scheme = tls ? "https://" : "http://";
  size_t scheme_n = tls ? 8 : 7;
  bool bracket = std::memchr(address.p, ':', address.n) != nullptr;
  char port_text[24];
  size_t port_n = 0;
  if (port != (tls ? 443u : 80u)) {
    port_text[0] = ':';
    port_n = 1 + decimal(port, port_text + 1);
  }
  size_t kv, any;
  keyValueStart(w, "url.full", kv, any);
  w.tag(1, kWireLen);
  w.varint(scheme_n + (bracket ? 2 : 0) + address.n + port_n + path.n + (query.present() ? 1 + query.n : 0));
  w.raw(scheme, scheme_n);
  if (bracket) w.raw("[", 1);
  w.raw(address.p, address.n);
  if (bracket) w.raw("]", 1);
  w.raw(port_text, port_n);
  w.raw(path.p, path.n);
  if (query.present()) {
    w.raw("?", 1);
    w.raw(query.p, query.n);
  }
  keyValueEnd(w, kv, any);
}

}  // namespace

bool encodeHttp1Span(const uint8_t* rec, const ExchangeRecord& x, uint32_t record_offset, EncodedBytes& out) {
  bool server = x.role == uint8_t(ExchangeRole::Server);
  if ((!server && x.role != uint8_t(ExchangeRole::Client)) || x.response_start_ns == 0) return false;
  // JavaScript reads sizes as doubles: past 2^53 it would round them.
  if (x.request_bytes >= (uint64_t(1) << 53) || x.response_bytes >= (uint64_t(1) << 53)) return false;
  const uint8_t* request = rec + sizeof x;
  const uint8_t* response = request + x.request_payload_bytes;
  RequestFacts r;
  if (!readRequest(request, x.request_payload_bytes, r)) return false;
  int status = readStatus(response, x.response_payload_bytes);
  if (status < 0) return false;
  Text host_name;
  int host_port = -1;
  bool has_host = r.host.present() && r.host.n > 0;
  if (has_host && !splitHost(r.host, host_name, host_port)) return false;
  if (host_name.n > 0xffff) return false;  // EncodedSpanEntry::server_address_bytes (an address is shorter)

  // What comes from the request (path, host, user agent; the path and host
  // twice in a client's url.full) is at most twice its payload, and
  // everything else (ids, times, keys, addresses, numbers, each length at
  // most 3 bytes) is under 1 KiB.
  SpanEntryWriter entry(out, record_offset, 2 * size_t(x.request_payload_bytes) + 2048);
  ProtoOut& w = entry.w();
  const char* method = kEncodedSpanMethods[r.method];
  size_t method_n = std::strlen(method);
  entry.head(x, server, method, method_n, x.response_end_ns != 0 ? x.response_end_ns : x.response_start_ns);

  // Attributes in describe.ts's order.
  char local_text[48], remote_text[48];
  Text local{reinterpret_cast<const uint8_t*>(local_text), formatAddress(x.local_addr, local_text)};
  Text remote{reinterpret_cast<const uint8_t*>(remote_text), formatAddress(x.remote_addr, remote_text)};
  bool tls = x.source == kSourceTls;
  // A server is named by the Host field, else by its own address; a
  // client's server by the Host field, else by the peer's address.
  Text server_address = has_host ? host_name : server ? local : remote;
  uint64_t server_port = host_port > 0 ? uint64_t(host_port) : server ? x.local_port : x.remote_port;
  stringAttribute(w, "http.request.method", method, method_n);
  if (server) {
    stringAttribute(w, "url.scheme", tls ? "https" : "http");
    stringAttribute(w, "url.path", r.path);
    if (r.query.present()) stringAttribute(w, "url.query", r.query);
  }
  entry.server(server_address, server_port);
  if (server) stringAttribute(w, "client.address", remote);
  else urlFullAttribute(w, tls, server_address, server_port, r.path, r.query);
  stringAttribute(w, "network.peer.address", remote);
  intAttribute(w, "network.peer.port", x.remote_port);
  stringAttribute(w, "network.protocol.version", r.http_minor ? "1.1" : "1.0");
  if (r.user_agent.present()) stringAttribute(w, "user_agent.original", r.user_agent);
  if (x.request_bytes > 0) intAttribute(w, "http.request.size", x.request_bytes);
  if (x.response_bytes > 0) intAttribute(w, "http.response.size", x.response_bytes);
  if (x.flags & kResponseIncomplete) trueAttribute(w, "sonde.response.incomplete");
  finishHttpSpan(entry, x, server, status, r.method, r.http_minor, EncodedSpanShape::Http);
  return true;
}

}  // namespace sonde
