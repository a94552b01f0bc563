#include "Http2Spans.h"

#include <cstring>

#include "../core/ExchangeRecord.h"
#include "Http1Spans.h"
#include "Http2Fields.h"
#include "SpanWriter.h"

namespace sonde {
namespace {

// Flags that put an attribute of their own on the span or change its
// status (http2/common.ts): such records are JavaScript's.
// kResponseIncomplete is written here.
constexpr uint8_t kLeftToJavaScript = kHeadersIncomplete | kStreamReset;

struct RequestFields {
  Text method, scheme, path, authority, host, user_agent, content_type;
};

bool readRequestFields(const uint8_t* p, size_t n, RequestFields& r) {
  size_t pos = 0;
  bool more;
  return readFieldBlock(p, n, pos, more, [&r](Text name, Text value) {
    if (equalsLower(name.p, name.n, ":method")) keepFirstField(r.method, value);
    else if (equalsLower(name.p, name.n, ":scheme")) keepFirstField(r.scheme, value);
    else if (equalsLower(name.p, name.n, ":path")) keepFirstField(r.path, value);
    else if (equalsLower(name.p, name.n, ":authority")) keepFirstField(r.authority, value);
    else if (equalsLower(name.p, name.n, "host")) keepFirstField(r.host, value);
    else if (equalsLower(name.p, name.n, "user-agent")) keepFirstField(r.user_agent, value);
    else if (equalsLower(name.p, name.n, "content-type")) keepFirstField(r.content_type, value);
  });
}

// The response's headers, and its trailers when an empty line follows
// them: the span reads only the headers, but a trailer block that is not
// complete makes it say so (setCaptureAttributes).
bool readResponseFields(const uint8_t* p, size_t n, Text& status, Text& content_type) {
  size_t pos = 0;
  bool has_trailers;
  if (!readFieldBlock(p, n, pos, has_trailers, [&](Text name, Text value) {
        if (equalsLower(name.p, name.n, ":status")) keepFirstField(status, value);
        else if (equalsLower(name.p, name.n, "content-type")) keepFirstField(content_type, value);
      }))
    return false;
  if (!has_trailers) return true;
  bool another_block;
  // parse.ts ignores whatever follows a second empty line; this declines it.
  return readFieldBlock(p, n, pos, another_block, [](Text, Text) {}) && !another_block;
}

// describe.ts's statusCode: three digits, 100..999; -1 when not.
int statusCode(Text text) {
  if (text.n != 3) return -1;
  int code = 0;
  for (size_t i = 0; i < 3; i++) {
    if (text.p[i] < '0' || text.p[i] > '9') return -1;
    code = code * 10 + (text.p[i] - '0');
  }
  return code >= 100 ? code : -1;
}

int methodIndex(Text method) {
  for (size_t m = 0; m < kEncodedSpanMethodCount; m++) {
    if (std::strlen(kEncodedSpanMethods[m]) == method.n && std::memcmp(method.p, kEncodedSpanMethods[m], method.n) == 0) return int(m);
  }
  return -1;
}

bool equals(Text text, const char* literal) {
  size_t n = std::strlen(literal);
  return text.n == n && std::memcmp(text.p, literal, n) == 0;
}

// describe.ts's setClientUrl: the authority as sent, else the socket's
// address (bracketed when IPv6) with its port unless the scheme's default.
void urlFullAttribute(ProtoOut& w, Text scheme, const Http2Server& endpoint, Text remote, uint64_t remote_port, Text path, Text query) {
  size_t kv, any;
  keyValueStart(w, "url.full", kv, any);
  w.tag(1, kWireLen);
  size_t value = w.beginLength();
  w.raw(scheme.p, scheme.n);
  w.raw("://", 3);
  if (endpoint.authority.present()) {
    w.raw(endpoint.authority.p, endpoint.authority.n);
  } else {
    bool v6 = std::memchr(remote.p, ':', remote.n) != nullptr;
    if (v6) w.raw("[", 1);
    w.raw(remote.p, remote.n);
    if (v6) w.raw("]", 1);
    uint64_t default_port = equals(scheme, "https") ? 443 : 80;
    if (remote_port != default_port) {
      char digits[20];
      w.raw(":", 1);
      w.raw(digits, decimal(remote_port, digits));
    }
  }
  w.raw(path.p, path.n);
  if (query.present()) {
    w.raw("?", 1);
    w.raw(query.p, query.n);
  }
  w.endLength(value);
  keyValueEnd(w, kv, any);
}

}  // namespace

bool encodeHttp2Span(const uint8_t* rec, const ExchangeRecord& x, uint32_t record_offset, EncodedBytes& out) {
  bool server = x.role == uint8_t(ExchangeRole::Server);
  if ((!server && x.role != uint8_t(ExchangeRole::Client)) || x.response_start_ns == 0 || (x.flags & kLeftToJavaScript) != 0) return false;
  // JavaScript reads sizes as doubles: past 2^53 it would round them.
  if (x.request_bytes >= (uint64_t(1) << 53) || x.response_bytes >= (uint64_t(1) << 53)) return false;
  const uint8_t* request = rec + sizeof x;
  const uint8_t* response = request + x.request_payload_bytes;
  RequestFields r;
  Text status_text, response_type;
  if (!readRequestFields(request, x.request_payload_bytes, r)) return false;
  if (!readResponseFields(response, x.response_payload_bytes, status_text, response_type)) return false;
  // grpc/describe.ts's isGrpc: a content-type that is not gRPC's says the
  // stream is plain; without one, JavaScript looks further.
  if (!r.content_type.present() && !response_type.present()) return false;
  if (isGrpcContentType(r.content_type) || isGrpcContentType(response_type)) return false;
  int method = r.method.present() ? methodIndex(r.method) : -1;
  if (method < 0) return false;
  bool tls = x.source == kSourceTls;
  // The scheme the connection implies, so that the metrics can tell it
  // from the record's source as for HTTP/1.
  if (!r.scheme.present() || !equals(r.scheme, tls ? "https" : "http")) return false;
  if (!r.path.present() || r.path.n == 0 || r.path.p[0] != '/') return false;
  Text path = r.path, query;
  if (const uint8_t* q = static_cast<const uint8_t*>(std::memchr(r.path.p, '?', r.path.n))) {
    path.n = size_t(q - r.path.p);
    query = Text{q + 1, r.path.n - path.n - 1};
    if (!queryExportedAsIs(query)) return false;
  }
  int status = statusCode(status_text);
  if (status < 0) return false;

  char local_text[48], remote_text[48];
  Text local{reinterpret_cast<const uint8_t*>(local_text), formatAddress(x.local_addr, local_text)};
  Text remote{reinterpret_cast<const uint8_t*>(remote_text), formatAddress(x.remote_addr, remote_text)};
  Http2Server endpoint;
  if (!http2Server(r.authority.present() ? r.authority : r.host, server ? local : remote, server ? x.local_port : x.remote_port, endpoint)) return false;

  // What comes from the request (the authority twice, as server.address
  // and in url.full; the path and query; the user agent) is at most twice
  // its payload; everything else (ids, times, keys, a socket address,
  // numbers) is under 1 KiB.
  SpanEntryWriter entry(out, record_offset, 2 * size_t(x.request_payload_bytes) + 2048);
  ProtoOut& w = entry.w();
  const char* method_name = kEncodedSpanMethods[method];
  size_t method_n = std::strlen(method_name);
  entry.head(x, server, method_name, method_n, x.response_end_ns != 0 ? x.response_end_ns : x.response_start_ns);

  // Attributes in http2/describe.ts's order.
  stringAttribute(w, "http.request.method", method_name, method_n);
  if (server) {
    stringAttribute(w, "url.scheme", r.scheme);
    stringAttribute(w, "url.path", path);
    if (query.present()) stringAttribute(w, "url.query", query);
  } else {
    urlFullAttribute(w, r.scheme, endpoint, remote, x.remote_port, path, query);
  }
  entry.server(endpoint.address, endpoint.port);
  if (server) stringAttribute(w, "client.address", remote);
  stringAttribute(w, "network.peer.address", remote);
  intAttribute(w, "network.peer.port", x.remote_port);
  stringAttribute(w, "network.protocol.version", "2");
  if (r.user_agent.present()) stringAttribute(w, "user_agent.original", r.user_agent);
  if (x.request_bytes > 0) intAttribute(w, "http.request.body.size", x.request_bytes);
  if (x.response_bytes > 0) intAttribute(w, "http.response.body.size", x.response_bytes);
  if (x.flags & kResponseIncomplete) trueAttribute(w, "sonde.response.incomplete");
  finishHttpSpan(entry, x, server, status, uint8_t(method), 0, EncodedSpanShape::Http2);
  return true;
}

}  // namespace sonde
