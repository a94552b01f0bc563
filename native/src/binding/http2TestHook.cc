#include "http2TestHook.h"

#include <memory>
#include <string>

#include "../core/http2/FrameReader.h"
#include "../core/http2/HpackDecoder.h"

namespace sonde {
namespace {

using namespace http2;

uint32_t optUint(const Napi::Object& o, const char* name, uint32_t fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("Expected option \"") + name + "\" to be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0)) throw Napi::RangeError::New(o.Env(), std::string("Option \"") + name + "\" is out of range");
  return uint32_t(d);
}

bool optBool(const Napi::Object& o, const char* name, bool fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("Expected option \"") + name + "\" to be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Object optionsAt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "Expected options to be an object");
  return info[i].As<Napi::Object>();
}

std::vector<Napi::Buffer<uint8_t>> buffersArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(info.Env(), "Expected first argument to be an array of Buffers");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<Napi::Buffer<uint8_t>> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(info.Env(), "Expected first argument to be an array of Buffers");
    out.push_back(v.As<Napi::Buffer<uint8_t>>());
  }
  return out;
}

HpackOptions hpackOptionsFrom(const Napi::Object& o) {
  HpackOptions h;
  h.max_table_bytes = optUint(o, "maxTableBytes", h.max_table_bytes);
  h.table_bytes_ceiling = optUint(o, "tableBytesCeiling", h.table_bytes_ceiling);
  h.mid_life = optBool(o, "midLife", h.mid_life);
  h.max_fields = optUint(o, "maxFields", h.max_fields);
  h.max_decoded_bytes = optUint(o, "maxDecodedBytes", h.max_decoded_bytes);
  return h;
}

Napi::Object blockObject(Napi::Env env, const DecodedBlock& b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", hpackStatusName(b.status));
  Napi::Array fields = Napi::Array::New(env, b.fields.size());
  for (size_t i = 0; i < b.fields.size(); i++) {
    const HeaderField& f = b.fields[i];
    Napi::Object fo = Napi::Object::New(env);
    fo.Set("name", Napi::String::New(env, f.name));
    fo.Set("value", Napi::String::New(env, f.value));
    // Only the flags that are set, so that tests can spell fields briefly.
    if (f.name_unknown) fo.Set("nameUnknown", true);
    if (f.value_unknown) fo.Set("valueUnknown", true);
    if (f.never_indexed) fo.Set("neverIndexed", true);
    fields.Set(uint32_t(i), fo);
  }
  o.Set("fields", fields);
  if (b.fields_dropped) o.Set("fieldsDropped", double(b.fields_dropped));
  return o;
}

Napi::Object hpackCounters(Napi::Env env, const HpackDecoder& d) {
  const HpackCounters& c = d.counters();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blocks", double(c.blocks));
  o.Set("blocksWithUnknownEntries", double(c.blocks_with_unknown_entries));
  o.Set("fieldsUnknown", double(c.fields_unknown));
  o.Set("errors", double(c.errors));
  o.Set("desynchronised", double(c.desynchronised));
  o.Set("broken", d.broken());
  return o;
}

// Collects what the reader reports as JS objects, or only counts them.
class CollectingSink : public FrameSink {
 public:
  CollectingSink(Napi::Env env, bool summary, HpackDecoder* hpack)
      : env_(env), summary_(summary), hpack_(hpack), events_(Napi::Array::New(env)) {}

  void onFrame(const FrameHeader& h) override {
    if (!add()) return;
    Napi::Object o = event("frame");
    o.Set("length", double(h.length));
    o.Set("type", double(h.type));
    o.Set("flags", double(h.flags));
    o.Set("streamId", double(h.stream_id));
  }
  void onHeaderBlock(const HeaderBlock& b) override {
    DecodedBlock decoded;
    if (hpack_ && !b.truncated) decoded = hpack_->decode(b.bytes, b.size);
    if (!add()) return;
    Napi::Object o = event(b.type == kPushPromise ? "pushPromise" : "headers");
    o.Set("streamId", double(b.stream_id));
    if (b.type == kPushPromise) o.Set("promisedStreamId", double(b.promised_stream_id));
    o.Set("endStream", b.end_stream);
    o.Set("truncated", b.truncated);
    if (b.truncated) o.Set("truncatedBytes", double(b.truncated_bytes));
    o.Set("block", Napi::Buffer<uint8_t>::Copy(env_, b.bytes, b.size));
    if (hpack_ && !b.truncated) o.Set("hpack", blockObject(env_, decoded));
  }
  void onData(uint32_t stream_id, uint32_t data_bytes, bool end_stream) override {
    if (!add()) return;
    Napi::Object o = event("data");
    o.Set("streamId", double(stream_id));
    o.Set("dataBytes", double(data_bytes));
    o.Set("endStream", end_stream);
  }
  void onRstStream(uint32_t stream_id, uint32_t error_code) override {
    if (!add()) return;
    Napi::Object o = event("rstStream");
    o.Set("streamId", double(stream_id));
    o.Set("errorCode", double(error_code));
  }
  void onGoaway(uint32_t last_stream_id, uint32_t error_code) override {
    if (!add()) return;
    Napi::Object o = event("goaway");
    o.Set("lastStreamId", double(last_stream_id));
    o.Set("errorCode", double(error_code));
  }
  void onSetting(uint16_t id, uint32_t value) override {
    if (!add()) return;
    Napi::Object o = event("setting");
    o.Set("id", double(id));
    o.Set("value", double(value));
  }

  uint32_t count() const { return count_; }
  Napi::Array events() const { return events_; }

 private:
  bool add() {
    count_++;
    return !summary_;
  }
  Napi::Object event(const char* kind) {
    Napi::Object o = Napi::Object::New(env_);
    o.Set("kind", kind);
    events_.Set(events_.Length(), o);
    return o;
  }

  Napi::Env env_;
  bool summary_;
  HpackDecoder* hpack_;
  Napi::Array events_;
  uint32_t count_ = 0;
};

// decodeFrames(chunks: Buffer[], options?): { events, eventCount, broken, counters, hpack? }
Napi::Value JS_decodeFrames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto chunks = buffersArg(info);
  Napi::Object o = optionsAt(info, 1);
  FrameReaderOptions ro;
  ro.expect_client_preface = optBool(o, "clientPreface", false);
  ro.max_frame_bytes = optUint(o, "maxFrameBytes", ro.max_frame_bytes);
  ro.max_header_block_bytes = optUint(o, "maxHeaderBlockBytes", ro.max_header_block_bytes);
  ro.data_payload_elided = optBool(o, "dataPayloadElided", ro.data_payload_elided);
  ro.payload_copy_bound = optUint(o, "payloadCopyBound", ro.payload_copy_bound);
  std::unique_ptr<HpackDecoder> hpack;
  Napi::Value hv = o.Get("hpack");
  if (hv.IsObject()) hpack = std::make_unique<HpackDecoder>(hpackOptionsFrom(hv.As<Napi::Object>()));
  else if (!hv.IsUndefined()) throw Napi::TypeError::New(env, "Expected option \"hpack\" to be an object");
  bool summary = optBool(o, "summary", false);

  FrameReader reader(ro);
  CollectingSink sink(env, summary, hpack.get());
  for (auto& c : chunks) reader.feed(c.Data(), c.Length(), sink);

  Napi::Object out = Napi::Object::New(env);
  if (!summary) out.Set("events", sink.events());
  out.Set("eventCount", double(sink.count()));
  out.Set("broken", reader.broken() ? Napi::Value(Napi::String::New(env, brokenReasonName(reader.brokenReason()))) : env.Null());
  const FrameReaderCounters& c = reader.counters();
  Napi::Object co = Napi::Object::New(env);
  co.Set("bytes", double(c.bytes));
  co.Set("frames", double(c.frames));
  co.Set("unknownFramesSkipped", double(c.unknown_frames_skipped));
  co.Set("headerBlocks", double(c.header_blocks));
  co.Set("headerBlocksTruncated", double(c.header_blocks_truncated));
  co.Set("headerBytesTruncated", double(c.header_bytes_truncated));
  out.Set("counters", co);
  if (hpack) out.Set("hpack", hpackCounters(env, *hpack));
  return out;
}

// decodeHpack(blocks: Buffer[], options?): { blocks, counters } — one decoder, state carried across blocks
Napi::Value JS_decodeHpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto blocks = buffersArg(info);
  HpackDecoder decoder(hpackOptionsFrom(optionsAt(info, 1)));
  Napi::Array out = Napi::Array::New(env, blocks.size());
  for (size_t i = 0; i < blocks.size(); i++) out.Set(uint32_t(i), blockObject(env, decoder.decode(blocks[i].Data(), blocks[i].Length())));
  Napi::Object result = Napi::Object::New(env);
  result.Set("blocks", out);
  result.Set("counters", hpackCounters(env, decoder));
  result.Set("desynchronised", decoder.desynchronised());
  return result;
}

const char* plausibleName(Plausible p) {
  switch (p) {
    case Plausible::kYes: return "yes";
    case Plausible::kNo: return "no";
    case Plausible::kNeedMore: return "needMore";
  }
  return "no";
}

Napi::Buffer<uint8_t> bufferArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "Expected first argument to be a Buffer");
  return info[0].As<Napi::Buffer<uint8_t>>();
}

// looksLikeFrames(bytes: Buffer, options?: { sender?: 'client' | 'server', maxFrameBytes?: number }): 'yes' | 'no' | 'needMore'
Napi::Value JS_looksLikeFrames(const Napi::CallbackInfo& info) {
  auto buf = bufferArg(info);
  Napi::Object o = optionsAt(info, 1);
  PlausibilityOptions po;
  po.max_frame_bytes = optUint(o, "maxFrameBytes", po.max_frame_bytes);
  Napi::Value s = o.Get("sender");
  if (s.IsString()) {
    std::string v = s.As<Napi::String>().Utf8Value();
    if (v == "client") po.sender = PlausibilityOptions::Sender::kClient;
    else if (v == "server") po.sender = PlausibilityOptions::Sender::kServer;
    else throw Napi::TypeError::New(info.Env(), "Expected option \"sender\" to be \"client\" or \"server\"");
  } else if (!s.IsUndefined()) {
    throw Napi::TypeError::New(info.Env(), "Expected option \"sender\" to be \"client\" or \"server\"");
  }
  return Napi::String::New(info.Env(), plausibleName(looksLikeHttp2Frames(buf.Data(), buf.Length(), po)));
}

// startsWithClientPreface(bytes: Buffer): 'yes' | 'no' | 'needMore'
Napi::Value JS_startsWithClientPreface(const Napi::CallbackInfo& info) {
  auto buf = bufferArg(info);
  return Napi::String::New(info.Env(), plausibleName(startsWithClientPreface(buf.Data(), buf.Length())));
}

}  // namespace

Napi::Object http2TestHook(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("decodeFrames", Napi::Function::New(env, JS_decodeFrames));
  o.Set("decodeHpack", Napi::Function::New(env, JS_decodeHpack));
  o.Set("looksLikeFrames", Napi::Function::New(env, JS_looksLikeFrames));
  o.Set("startsWithClientPreface", Napi::Function::New(env, JS_startsWithClientPreface));
  return o;
}

}  // namespace sonde
