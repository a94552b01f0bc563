#include "GrpcSpans.h"

#include <cstring>

#include "../core/ExchangeRecord.h"
#include "Http2Fields.h"
#include "SpanWriter.h"

namespace sonde {
namespace {

// grpc/status.ts's names, by code.
constexpr const char* kGrpcStatusNames[] = {"OK",        "CANCELLED",          "UNKNOWN",      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                                            "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",     "UNAVAILABLE",      "DATA_LOSS",         "UNAUTHENTICATED"};
constexpr uint64_t kGrpcStatusNameCount = sizeof(kGrpcStatusNames) / sizeof(kGrpcStatusNames[0]);

// Flags that put an attribute of its own on the span or change its status
// (http2/common.ts's setCaptureAttributes and statusWithoutResponse):
// such records are JavaScript's. kResponseIncomplete is written here.
constexpr uint8_t kLeftToJavaScript = kHeadersIncomplete | kStreamReset;

// grpc/status.ts's isGrpcError: a server's span fails only on the codes
// that are its own doing.
bool isGrpcError(uint64_t code, bool server) {
  if (!server) return code != 0;
  return code == 2 || code == 4 || code == 12 || code == 13 || code == 14 || code == 15;
}

// The fields of one header block that the span reads: the first of each
// name counts (parse.ts's fieldValue).
struct RequestFields {
  Text path, authority, host, content_type;
};
struct ResponseFields {
  Text status, message;
};

bool readRequestFields(const uint8_t* p, size_t n, RequestFields& r) {
  size_t pos = 0;
  bool more;
  return readFieldBlock(p, n, pos, more, [&r](Text name, Text value) {
    if (equalsLower(name.p, name.n, ":path")) keepFirstField(r.path, value);
    else if (equalsLower(name.p, name.n, ":authority")) keepFirstField(r.authority, value);
    else if (equalsLower(name.p, name.n, "host")) keepFirstField(r.host, value);
    else if (equalsLower(name.p, name.n, "content-type")) keepFirstField(r.content_type, value);
  });
}

// The response's headers and, when an empty line follows them, its
// trailers: grpc/describe.ts's statusField reads the trailers first.
bool readResponseFields(const uint8_t* p, size_t n, ResponseFields& r) {
  ResponseFields headers, trailers;
  auto into = [](ResponseFields& f) {
    return [&f](Text name, Text value) {
      if (equalsLower(name.p, name.n, "grpc-status")) keepFirstField(f.status, value);
      else if (equalsLower(name.p, name.n, "grpc-message")) keepFirstField(f.message, value);
    };
  };
  size_t pos = 0;
  bool has_trailers;
  if (!readFieldBlock(p, n, pos, has_trailers, into(headers))) return false;
  if (has_trailers) {
    bool another_block;
    // parse.ts ignores whatever follows a second empty line; this declines it.
    if (!readFieldBlock(p, n, pos, another_block, into(trailers)) || another_block) return false;
  }
  r.status = trailers.status.present() ? trailers.status : headers.status;
  r.message = trailers.message.present() ? trailers.message : headers.message;
  return true;
}

// grpc/describe.ts's splitCallPath: "/Service/Method"; where the second
// slash is.
size_t callPathSlash(Text path) {
  if (path.n < 4 || path.p[0] != '/') return 0;
  if (std::memchr(path.p, '?', path.n) != nullptr) return 0;
  const uint8_t* slash = static_cast<const uint8_t*>(std::memchr(path.p + 1, '/', path.n - 1));
  if (slash == nullptr) return 0;
  size_t at = size_t(slash - path.p);
  if (at <= 1 || at == path.n - 1) return 0;
  if (std::memchr(path.p + at + 1, '/', path.n - at - 1) != nullptr) return 0;
  return at;
}

// grpc/status.ts's parseGrpcStatus, for codes the entry holds (u16).
bool readStatusCode(Text text, uint64_t& code) {
  if (text.n == 0 || text.n > 5) return false;
  code = 0;
  for (size_t i = 0; i < text.n; i++) {
    if (text.p[i] < '0' || text.p[i] > '9') return false;
    code = code * 10 + uint64_t(text.p[i] - '0');
  }
  return code <= 0xffff;
}

}  // namespace

bool encodeGrpcSpan(const uint8_t* rec, const ExchangeRecord& x, uint32_t record_offset, EncodedBytes& out) {
  bool server = x.role == uint8_t(ExchangeRole::Server);
  if ((!server && x.role != uint8_t(ExchangeRole::Client)) || x.response_start_ns == 0 || (x.flags & kLeftToJavaScript) != 0) return false;
  const uint8_t* request = rec + sizeof x;
  const uint8_t* response = request + x.request_payload_bytes;
  RequestFields r;
  ResponseFields s;
  if (!readRequestFields(request, x.request_payload_bytes, r) || !isGrpcContentType(r.content_type)) return false;
  size_t slash = callPathSlash(r.path);
  if (slash == 0 || r.path.n - 1 > 0xffff) return false;
  if (!readResponseFields(response, x.response_payload_bytes, s)) return false;
  uint64_t code;
  if (!s.status.present() || !readStatusCode(s.status, code)) return false;
  bool failed = isGrpcError(code, server);
  // decodeGrpcMessage leaves ASCII without '%' as it is.
  Text message = failed && s.message.present() ? s.message : Text{};
  if (message.present() && std::memchr(message.p, '%', message.n) != nullptr) return false;

  char local_text[48], remote_text[48];
  Text local{reinterpret_cast<const uint8_t*>(local_text), formatAddress(x.local_addr, local_text)};
  Text remote{reinterpret_cast<const uint8_t*>(remote_text), formatAddress(x.remote_addr, remote_text)};
  Http2Server endpoint;
  if (!http2Server(r.authority.present() ? r.authority : r.host, server ? local : remote, server ? x.local_port : x.remote_port, endpoint)) return false;

  // What comes from the request (the path twice, the authority) and the
  // response (the message, the status) is at most twice their payloads;
  // everything else is under 1 KiB.
  SpanEntryWriter entry(out, record_offset, 2 * size_t(x.request_payload_bytes) + size_t(x.response_payload_bytes) + 2048);
  ProtoOut& w = entry.w();
  // RPC semconv: "$package.$service/$method", the path without its slash.
  entry.head(x, server, r.path.p + 1, r.path.n - 1, x.response_end_ns != 0 ? x.response_end_ns : x.response_start_ns);

  // Attributes in grpc/describe.ts's order.
  stringAttribute(w, "rpc.system", "grpc");
  stringAttribute(w, "rpc.service", r.path.p + 1, slash - 1);
  stringAttribute(w, "rpc.method", r.path.p + slash + 1, r.path.n - slash - 1);
  entry.server(endpoint.address, endpoint.port);
  if (server) stringAttribute(w, "client.address", remote);
  stringAttribute(w, "network.peer.address", remote);
  intAttribute(w, "network.peer.port", x.remote_port);
  stringAttribute(w, "network.protocol.name", "http");
  stringAttribute(w, "network.protocol.version", "2");
  if (x.flags & kResponseIncomplete) trueAttribute(w, "sonde.response.incomplete");
  intAttribute(w, "rpc.grpc.status_code", code);
  if (failed) {
    char digits[20];
    if (code < kGrpcStatusNameCount) stringAttribute(w, "error.type", kGrpcStatusNames[code]);
    else stringAttribute(w, "error.type", digits, decimal(code, digits));
  }
  entry.tail(x, failed, message);
  EncodedSpanEntry& e = entry.entry();
  e.status_code = uint16_t(code);
  e.shape = uint8_t(EncodedSpanShape::Grpc);
  entry.finish();
  return true;
}

}  // namespace sonde
