// OTLP Span messages for plain HTTP/1 exchanges, written on the reader
// thread so that the JavaScript thread only places them under their
// resource and sends them (docs/design-notes.md, "Spans encoded by the
// addon").
//
// The meaning of an exchange is src/protocols/http1/describe.ts's to say;
// this is a second reading of the same records, for the common case only.
// It encodes an exchange only when it can tell that the JavaScript
// describer would give exactly these bytes, and leaves every other record
// (a query that could hold something to redact, an absolute-form or
// CONNECT target, a cut or unusual head, a missing or odd response, bytes
// above 0x7f) to JavaScript. test/native/encodedSpans.test.ts requires
// byte equality with the JavaScript path over a corpus and a fuzz; the one
// known difference is times past 2^53 ns of uptime (104 days), which
// JavaScript rounds to a double and the addon keeps exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sonde {

// The methods encoded here, in the order of EncodedSpanEntry::method. Needs
// to line up with src/native/encodedSpans.ts (ENCODED_SPAN_METHODS).
constexpr const char* kEncodedSpanMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
constexpr size_t kEncodedSpanMethodCount = sizeof(kEncodedSpanMethods) / sizeof(kEncodedSpanMethods[0]);

// What the query redaction looks for in a parameter name
// (src/protocols/http1/redact.ts, REDACTION_HINTS): a query in which none
// occurs is exported as it is, and encoded here.
constexpr const char* kRedactionHints[] = {"token", "pass", "pwd", "secret", "sig", "sess", "auth", "credential", "jwt", "code", "ssn", "card", "cvv", "cvc", "otp", "key"};

#pragma pack(push, 1)
// One encoded span, followed by its Span message (no tag, no length).
// Entries follow the order of their records. Needs to line up with
// src/native/encodedSpans.ts; test/native/layout.test.ts checks it.
struct EncodedSpanEntry {
  uint32_t entry_bytes;    // this header and the Span message
  uint32_t record_offset;  // of the ExchangeRecord it encodes, in the records batch
  uint32_t span_bytes;
  // Where the Span's start_time_unix_nano and end_time_unix_nano (fixed64)
  // sit in the Span message. They hold CLOCK_MONOTONIC ns: JavaScript owns
  // the one conversion to wall-clock time (src/native/clock.ts) and writes
  // the epoch time over them.
  uint32_t start_time_at;
  uint32_t end_time_at;
  uint16_t status_code;    // of the response: 100..999
  uint8_t method;          // index into kEncodedSpanMethods
  uint8_t http_minor;      // HTTP/1.<minor>: 0 or 1
  uint64_t end_ns;         // CLOCK_MONOTONIC ns at which the span ends
  // The server.address attribute's value, in the Span message, and
  // server.port: what the RED metrics key a client span on.
  uint32_t server_address_at;
  uint16_t server_address_bytes;
  uint16_t server_port;
};
#pragma pack(pop)

static_assert(sizeof(EncodedSpanEntry) == 40, "EncodedSpanEntry layout changed: update src/native/encodedSpans.ts");

// Appends an entry for every record of `records` (ExchangeRecords back to
// back) it can encode. Returns the number of entries appended.
size_t encodeHttp1Spans(const uint8_t* records, size_t bytes, std::vector<uint8_t>& out);

}  // namespace sonde
