// The addon's reading of plain HTTP/1 exchanges (EncodedSpans.h): the
// meaning is src/protocols/http1/describe.ts's. It encodes an exchange
// only when it can tell that the JavaScript describer would give exactly
// these bytes, and leaves every other record (a query that could hold
// something to redact, an absolute-form or CONNECT target, a cut or
// unusual head, a missing or odd response, bytes above 0x7f) to
// JavaScript.
#pragma once

#include <cstddef>
#include <cstdint>

#include "EncodedSpans.h"

namespace sonde {

// The methods encoded here and in Http2Spans.cc, in the order of
// EncodedSpanEntry::method. Needs
// to line up with src/native/encodedSpans.ts (ENCODED_SPAN_METHODS).
constexpr const char* kEncodedSpanMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
constexpr size_t kEncodedSpanMethodCount = sizeof(kEncodedSpanMethods) / sizeof(kEncodedSpanMethods[0]);

// What the query redaction looks for in a parameter name
// (src/protocols/http1/redact.ts, REDACTION_HINTS): a query in which none
// occurs is exported as it is, and encoded here and in Http2Spans.cc.
constexpr const char* kRedactionHints[] = {"token", "pass", "pwd", "secret", "sig", "sess", "auth", "credential", "jwt", "code", "ssn", "card", "cvv", "cvc", "otp", "key"};

struct ExchangeRecord;
struct Text;

// Whether the describers export this url.query unchanged, as this writes
// it (src/protocols/http1/redact.ts).
bool queryExportedAsIs(Text query);

// Appends the entry of the HTTP/1 record at `rec` (its header already read
// into `x`), when it is one this reading takes.
bool encodeHttp1Span(const uint8_t* rec, const ExchangeRecord& x, uint32_t record_offset, EncodedBytes& out);

}  // namespace sonde
