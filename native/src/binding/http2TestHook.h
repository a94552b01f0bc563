// A test hook: the HTTP/2 frame reader and HPACK decoder driven from
// JavaScript (test/native/http2.test.ts). Not for production use: it copies
// every header block and field into JS objects.
#pragma once

#include "napi_setup.h"

namespace sonde {

// http2Test: { decodeFrames, decodeHpack, looksLikeFrames, startsWithClientPreface }
Napi::Object http2TestHook(Napi::Env env);

}  // namespace sonde
