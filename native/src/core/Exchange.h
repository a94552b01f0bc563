// The protocol-neutral model the stitchers fill and the linker and the
// record writer read: one request and its response, and the exchange's
// trace context. A stitcher extends Exchange with what its protocol needs
// to find the response's end.
#pragma once

#include <cstdint>
#include <string>

#include "ExchangeRecord.h"

namespace sonde {

struct Message {
  uint32_t seq = 0;  // the kernel's msg_seq of the message that carried its start
  uint32_t tid = 0;
  uint64_t start_ns = 0;
  uint64_t last_ns = 0;
  uint64_t bytes = 0;
  // Bytes of the same kernel message that belong to the messages before
  // this one (several pipelined messages, or frames of several streams, in
  // one chunk).
  uint64_t group_offset = 0;
  std::string payload;  // the captured head
};

struct TraceContext {
  uint8_t trace_id[16] = {};
  uint8_t span_id[8] = {};
  uint8_t parent_span_id[8] = {};  // all zero for a root
  uint8_t trace_flags = 1;
  LinkSource link_source = LinkSource::None;
  // A client call counted among its parent's calls in flight until it
  // ends (TraceLinker::clientCallEnded).
  bool counted_in_flight = false;
  // A client call left a root because several requests could have made it.
  bool ambiguous = false;
};

// What the calls made by code that runs after a read of a connection
// belong to: the request the connection last carried (docs/design-notes.md,
// "Linking on event loops"). A server connection's callbacks serve its latest
// request; a client connection's serve the request that made its latest
// call. Unknown when that is not known (a root call, a connection several
// streams share).
struct CallbackContext {
  bool known = false;
  // Not known because the evidence named several requests (a read of
  // several HTTP/2 streams, the answer to a call that was itself left a
  // root for that reason): a call made after it is ambiguous, and counted.
  bool ambiguous = false;
  uint8_t trace_id[16] = {};
  uint8_t span_id[8] = {};  // the parent of the calls they make
  uint8_t trace_flags = 1;
};

struct Exchange {
  Message request;
  Message response;
  bool has_response = false;
  uint8_t flags = 0;       // ExchangeFlag bits
  uint32_t stream_id = 0;  // 0 where the protocol has no streams
  uint32_t end_error_code = 0;  // HTTP/2: code of the RST_STREAM/GOAWAY that ended it
  bool linked = false;     // the linker has assigned `context`
  TraceContext context;
};

}  // namespace sonde
