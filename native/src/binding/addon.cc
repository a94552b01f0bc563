// The only Node-API code: thin wrappers around native/src/core. Options are
// validated and defaulted in src/native/binding.ts; here they are only
// type-checked.
#include <chrono>
#include <ctime>
#include <cstddef>
#include <memory>
#include <thread>

#include "../core/BpfTracer.h"
#include "../core/ConnTracker.h"
#include "../core/ExchangeRecord.h"
#include "../core/RecordWriter.h"
#include "../core/TlsProbePlan.h"
#include "../core/UprobeSite.h"
#include "../discovery/ListeningSockets.h"
#include "../encode/EncodedSpans.h"
#include "../encode/Http1Spans.h"
#include "LentBatches.h"
#include "http2TestHook.h"
#include "napi_setup.h"

namespace sonde {
namespace {

constexpr size_t kMaxQueuedBatches = 64;
// How long the reader waits for room in that queue before it drops a
// batch, by default (the option batchQueueWaitMs). The ring buffer (4 MiB
// by default) keeps filling meanwhile: at 20k gRPC calls a second it holds
// about a quarter of a second.
constexpr uint32_t kDefaultBatchQueueWaitMs = 100;
// A batch that finds every lent buffer taken waits up to 5 ms for one to
// come back before it gets memory of its own, which V8 and malloc then
// hold on to: at 20k gRPC calls a second a drain is some 30 batches, more
// than the 16 lent, and the JavaScript thread gives each back within a
// millisecond or two (sonde's RSS under grpc-unary load, by hand: 107 MB
// with 178 batches of their own in 10 s, 100 MB with 20).
constexpr auto kLentWaitStep = std::chrono::microseconds(100);
constexpr int kLentWaitSteps = 50;

uint32_t optUint(const Napi::Object& o, const char* name, uint32_t fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("Expected option \"") + name + "\" to be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0) throw Napi::RangeError::New(o.Env(), std::string("Option \"") + name + "\" is out of range");
  return static_cast<uint32_t>(d);
}

bool optBool(const Napi::Object& o, const char* name, bool fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("Expected option \"") + name + "\" to be a boolean");
  return v.As<Napi::Boolean>().Value();
}

TrackerOptions trackerOptionsFrom(const Napi::Object& o) {
  TrackerOptions t;
  t.response_quiet_ns = uint64_t(optUint(o, "responseQuietMs", t.response_quiet_ns / 1'000'000)) * 1'000'000;
  t.response_timeout_ns = uint64_t(optUint(o, "responseTimeoutMs", t.response_timeout_ns / 1'000'000)) * 1'000'000;
  t.max_connections = optUint(o, "maxConnections", t.max_connections);
  t.max_pending_per_connection = optUint(o, "maxPendingPerConnection", t.max_pending_per_connection);
  t.max_peer_contexts = optUint(o, "maxPeerContexts", t.max_peer_contexts);
  return t;
}

Napi::Object optionsArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(info.Env(), "Expected first argument to be an options object");
  return info[0].As<Napi::Object>();
}

uint64_t bigintArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBigInt())
    throw Napi::TypeError::New(info.Env(), std::string("Expected ") + what + " to be a bigint");
  bool lossless;
  return info[i].As<Napi::BigInt>().Uint64Value(&lossless);
}

void putTrackerCounters(Napi::Object& out, const TrackerCounters& c) {
  Napi::Env env = out.Env();
  auto put = [&](const char* name, const std::atomic<uint64_t>& v) {
    out.Set(name, Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))));
  };
  put("eventsRead", c.events_read);
  put("eventsMalformed", c.events_malformed);
  put("messagesLost", c.messages_lost);
  put("exchangesEmitted", c.exchanges_emitted);
  put("exchangesAbandoned", c.exchanges_abandoned);
  put("responsesWithoutRequest", c.responses_without_request);
  put("requestsTimedOut", c.requests_timed_out);
  put("responsesIncomplete", c.responses_incomplete);
  put("connectionsOpened", c.connections_opened);
  put("connectionsEvicted", c.connections_evicted);
  put("connectionsTracked", c.connections_tracked);
  put("linksAmbiguous", c.links_ambiguous);
  put("linksByCause", c.links_by_cause);
  put("connectContextsDropped", c.connect_contexts_dropped);
  put("h2StreamsDropped", c.h2_streams_dropped);
  put("h2HeaderBlocksTruncated", c.h2_header_blocks_truncated);
  put("h2HpackErrors", c.h2_hpack_errors);
  put("h2FrameErrors", c.h2_frame_errors);
  put("h2HeadersUnknown", c.h2_headers_unknown);
  put("h2FramesUnmatched", c.h2_frames_unmatched);
  put("selfConnectionsIgnored", c.self_connections_ignored);
}

template <class Bytes>
Napi::Buffer<uint8_t> bufferFrom(Napi::Env env, Bytes* bytes) {
  // Zero-copy: the Buffer owns the bytes from here on.
  return Napi::Buffer<uint8_t>::New(
      env, bytes->data(), bytes->size(), [](Napi::Env, uint8_t*, Bytes* v) { delete v; }, bytes);
}

// JS: new Tracer(options: NativeTracerOptions)
class Tracer : public Napi::ObjectWrap<Tracer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tracer",
                       {
                           InstanceMethod("start", &Tracer::JS_start),
                           InstanceMethod("stop", &Tracer::JS_stop),
                           InstanceMethod("releaseBatch", &Tracer::JS_releaseBatch),
                           InstanceMethod("setPidSelected", &Tracer::JS_setPidSelected),
                           InstanceMethod("selectComm", &Tracer::JS_selectComm),
                           InstanceMethod("execCount", &Tracer::JS_execCount),
                           InstanceMethod("processChangeCount", &Tracer::JS_processChangeCount),
                           InstanceMethod("attachEventLoopMarks", &Tracer::JS_attachEventLoopMarks),
                           InstanceMethod("detachEventLoopMarks", &Tracer::JS_detachEventLoopMarks),
                           InstanceMethod("attachTls", &Tracer::JS_attachTls),
                           InstanceMethod("detachTls", &Tracer::JS_detachTls),
                           InstanceMethod("counters", &Tracer::JS_counters),
                       });
  }

  explicit Tracer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tracer>(info) {
    Napi::Object o = optionsArg(info);
    BpfTracerOptions opts;
    opts.self_pid = optUint(o, "selfPid", 0);
    opts.trace_all_pids = optBool(o, "traceAllPids", false);
    opts.payload_capture_bytes = optUint(o, "payloadCaptureBytes", opts.payload_capture_bytes);
    opts.ring_buffer_bytes = optUint(o, "ringBufferBytes", opts.ring_buffer_bytes);
    opts.poll_interval_ms = optUint(o, "pollIntervalMs", opts.poll_interval_ms);
    opts.max_batch_bytes = optUint(o, "maxBatchBytes", opts.max_batch_bytes);
    opts.tracker = trackerOptionsFrom(o);
    encode_spans_ = optBool(o, "encodeSpans", false);
    batch_queue_wait_ms_ = optUint(o, "batchQueueWaitMs", kDefaultBatchQueueWaitMs);
    tracer_ = std::make_unique<BpfTracer>(opts);
    napi_add_env_cleanup_hook(info.Env(), &Tracer::onEnvCleanup, this);
  }

  ~Tracer() override {
    napi_remove_env_cleanup_hook(Env(), &Tracer::onEnvCleanup, this);
    shutdown();
  }

 private:
  // The process is going away with the tracer still running: stop the
  // reader thread before the environment it calls into disappears.
  static void onEnvCleanup(void* self) { static_cast<Tracer*>(self)->shutdown(); }

  void shutdown() {
    if (tracer_) tracer_->stop();
    if (started_) {
      tsfn_.Release();
      started_ = false;
    }
  }

  // start(onBatch: (batch: Buffer, exchanges: number, recordsBytes: number, batchBytes: number, lent: number) => void,
  //       lend?: Buffer[]): { attached: string[], onDemand: string[] }
  // batch[0, batchBytes): the records, then (with the option encodeSpans)
  // the entries encodeSpans() gives for them, from recordsBytes on. lent:
  // the index in `lend` of the buffer the batch is in, to be given back with
  // releaseBatch(lent); -1 when the batch has a buffer of its own.
  Napi::Value JS_start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction())
      throw Napi::TypeError::New(env, "Expected first argument to be a function");
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsArray())
      throw Napi::TypeError::New(env, "Expected second argument to be an array of Buffers");
    if (started_) throw Napi::Error::New(env, "start tracer: already started");
    auto lent = std::make_shared<LentBatches>();
    if (info.Length() > 1 && info[1].IsArray()) lent->lend(info[1].As<Napi::Array>());
    lent_ = lent;
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "sonde-exchanges", kMaxQueuedBatches, 1);
    AttachReport report;
    queue_wait_failed_ = false;
    lent_wait_failed_ = false;
    try {
      report = tracer_->start([this, lent](const uint8_t* records, size_t records_bytes, size_t exchanges) {
        // On the reader thread: the spans it encodes cost the JavaScript
        // thread only a copy. They follow the records in the same buffer.
        encoded_.clear();
        if (encode_spans_) encodeSpans(records, records_bytes, encoded_);
        size_t batch_bytes = records_bytes + encoded_.size();
        int slot = lent->take(batch_bytes);
        // After a wait that found none, the next batches do not wait until
        // one is free at once again: a JavaScript thread that stays behind
        // must not slow the reader to a batch per wait.
        if (slot == LentBatches::kNone && lent->fits(batch_bytes) && !lent_wait_failed_) {
          for (int step = 0; slot == LentBatches::kNone && step < kLentWaitSteps && tracer_->running(); step++) {
            std::this_thread::sleep_for(kLentWaitStep);
            slot = lent->take(batch_bytes);
          }
          lent_wait_failed_ = slot == LentBatches::kNone;
        } else if (slot != LentBatches::kNone) {
          lent_wait_failed_ = false;
        }
        uint8_t* into;
        std::vector<uint8_t>* own = nullptr;
        if (slot != LentBatches::kNone) {
          into = lent->data(slot);
        } else {
          own = new std::vector<uint8_t>(batch_bytes);
          into = own->data();
        }
        std::memcpy(into, records, records_bytes);
        if (!encoded_.empty()) std::memcpy(into + records_bytes, encoded_.data(), encoded_.size());
        auto hand_over = [lent, slot, exchanges, records_bytes, batch_bytes](Napi::Env env, Napi::Function cb, std::vector<uint8_t>* data) {
          Napi::Value batch = slot != LentBatches::kNone ? lent->value(slot) : bufferFrom(env, data);
          cb.Call({batch, Napi::Number::New(env, double(exchanges)), Napi::Number::New(env, double(records_bytes)),
                   Napi::Number::New(env, double(batch_bytes)), Napi::Number::New(env, slot)});
        };
        napi_status status = tsfn_.NonBlockingCall(own, hand_over);
        // A full queue is the JavaScript thread behind by a long task (a
        // cold start under load): the ring buffer still has room, so the
        // reader waits a little for the queue before it drops the batch.
        // Once a wait has run out, the batches after it are dropped at
        // once until the queue takes one again: waiting for each would
        // slow the reader to a batch per wait, and the ring buffer would
        // then lose kernel events, which break exchanges, instead.
        if (status == napi_queue_full && batch_queue_wait_ms_ > 0 && !queue_wait_failed_) {
          batches_waited_.fetch_add(1, std::memory_order_relaxed);
          for (uint32_t waited_ms = 0; status == napi_queue_full && waited_ms < batch_queue_wait_ms_ && tracer_->running(); waited_ms++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            status = tsfn_.NonBlockingCall(own, hand_over);
          }
        }
        queue_wait_failed_ = status == napi_queue_full;
        if (status != napi_ok) {
          delete own;
          lent->giveBack(slot);
          return false;
        }
        (slot != LentBatches::kNone ? batches_lent_ : batches_unlent_).fetch_add(1, std::memory_order_relaxed);
        return true;
      });
    } catch (const std::exception& e) {
      tsfn_.Release();
      throw Napi::Error::New(env, e.what());
    }
    started_ = true;
    Napi::Array attached = Napi::Array::New(env, report.attached.size());
    for (size_t i = 0; i < report.attached.size(); i++) attached.Set(i, report.attached[i]);
    Napi::Object out = Napi::Object::New(env);
    out.Set("attached", attached);
    Napi::Array on_demand = Napi::Array::New(env, report.on_demand.size());
    for (size_t i = 0; i < report.on_demand.size(); i++) on_demand.Set(i, report.on_demand[i]);
    out.Set("onDemand", on_demand);
    return out;
  }

  // releaseBatch(lent: number): void — the lent buffer of a batch is free again
  Napi::Value JS_releaseBatch(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a lent buffer index");
    double index = info[0].As<Napi::Number>().DoubleValue();
    if (!(index >= 0 && index == double(int32_t(index)))) throw Napi::RangeError::New(info.Env(), "Expected a lent buffer index");
    // After stop, a release belongs to the run that ended: the next start
    // lends buffers of its own.
    if (lent_) lent_->giveBack(int32_t(index));
    return info.Env().Undefined();
  }

  // stop(): Buffer — the records still in flight, closed out
  Napi::Value JS_stop(const Napi::CallbackInfo& info) {
    auto* last = new std::vector<uint8_t>(tracer_->stop());
    if (started_) {
      tsfn_.Release();
      started_ = false;
    }
    lent_.reset();
    return bufferFrom(info.Env(), last);
  }

  // setPidSelected(pid: number, selected: boolean, withDescendants?: boolean): void
  Napi::Value JS_setPidSelected(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean() ||
        (info.Length() > 2 && !info[2].IsBoolean() && !info[2].IsUndefined()))
      throw Napi::TypeError::New(info.Env(), "Expected arguments (pid: number, selected: boolean, withDescendants?: boolean)");
    bool with_descendants = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    tracer_->setPidSelected(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Boolean>().Value(), with_descendants);
    return info.Env().Undefined();
  }

  // selectComm(comm: string): void
  Napi::Value JS_selectComm(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString())
      throw Napi::TypeError::New(info.Env(), "Expected first argument to be a string");
    tracer_->selectComm(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  }

  // execCount(): number | undefined — execs on the host since attach
  Napi::Value JS_execCount(const Napi::CallbackInfo& info) {
    int64_t count = tracer_->execCount();
    return count < 0 ? info.Env().Undefined() : Napi::Number::New(info.Env(), double(count));
  }

  // processChangeCount(): number | undefined — processes forked, exec'd, exited or reaped since attach
  Napi::Value JS_processChangeCount(const Napi::CallbackInfo& info) {
    int64_t count = tracer_->processChangeCount();
    return count < 0 ? info.Env().Undefined() : Napi::Number::New(info.Env(), double(count));
  }

  // attachEventLoopMarks(pid: number, executable: string): string — "" once attached, else why not
  Napi::Value JS_attachEventLoopMarks(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString())
      throw Napi::TypeError::New(info.Env(), "Expected arguments (pid: number, executable: string)");
    return Napi::String::New(info.Env(), tracer_->attachEventLoopMarks(info[0].As<Napi::Number>().Uint32Value(),
                                                                       info[1].As<Napi::String>().Utf8Value()));
  }

  // detachEventLoopMarks(pid: number): void
  Napi::Value JS_detachEventLoopMarks(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a pid");
    tracer_->detachEventLoopMarks(info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }

  // attachTls(path: string, pid: number): { error, probes } — error "" once attached, else why not (pid -1:
  // every process); probes says where each uprobe sits
  Napi::Value JS_attachTls(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
      throw Napi::TypeError::New(info.Env(), "Expected arguments (path: string, pid: number)");
    std::string placement;
    std::string error = tracer_->attachTls(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                                           &placement);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("error", error);
    out.Set("probes", placement);
    return out;
  }

  // detachTls(pid: number): void
  Napi::Value JS_detachTls(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a pid");
    tracer_->detachTls(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

  // counters(): NativeCounters
  Napi::Value JS_counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    putTrackerCounters(out, tracer_->trackerCounters());
    out.Set("batchesDropped", Napi::Number::New(env, double(tracer_->batchesDropped())));
    out.Set("exchangesDropped", Napi::Number::New(env, double(tracer_->exchangesDropped())));
    out.Set("ringBufferPolls", Napi::Number::New(env, double(tracer_->ringBufferPolls())));
    out.Set("batchesLent", Napi::Number::New(env, double(batches_lent_.load(std::memory_order_relaxed))));
    out.Set("batchesUnlent", Napi::Number::New(env, double(batches_unlent_.load(std::memory_order_relaxed))));
    out.Set("batchesWaited", Napi::Number::New(env, double(batches_waited_.load(std::memory_order_relaxed))));
    std::vector<uint64_t> drops = tracer_->kernelDrops();
    Napi::Array kernel = Napi::Array::New(env, drops.size());
    for (size_t i = 0; i < drops.size(); i++) kernel.Set(i, Napi::Number::New(env, double(drops[i])));
    out.Set("kernelDrops", kernel);
    return out;
  }

  std::unique_ptr<BpfTracer> tracer_;
  Napi::ThreadSafeFunction tsfn_;
  bool started_ = false;
  bool encode_spans_ = false;
  uint32_t batch_queue_wait_ms_ = kDefaultBatchQueueWaitMs;
  // The reader thread's: its last wait for the queue, or for a lent
  // buffer, ran out (see the sink in JS_start).
  bool queue_wait_failed_ = false;
  bool lent_wait_failed_ = false;
  EncodedBytes encoded_;  // the reader thread's, reused batch after batch
  std::shared_ptr<LentBatches> lent_;
  std::atomic<uint64_t> batches_lent_{0};
  std::atomic<uint64_t> batches_unlent_{0};
  std::atomic<uint64_t> batches_waited_{0};
};

// JS: new ReplayTracker(options) — the correlator without a kernel, for
// tests that feed recorded or synthetic event streams with their own clock.
class ReplayTracker : public Napi::ObjectWrap<ReplayTracker> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReplayTracker",
                       {
                           InstanceMethod("feed", &ReplayTracker::JS_feed),
                           InstanceMethod("tick", &ReplayTracker::JS_tick),
                           InstanceMethod("finish", &ReplayTracker::JS_finish),
                           InstanceMethod("take", &ReplayTracker::JS_take),
                           InstanceMethod("counters", &ReplayTracker::JS_counters),
                           InstanceMethod("setKernelMessage", &ReplayTracker::JS_setKernelMessage),
                       });
  }

  explicit ReplayTracker(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReplayTracker>(info) {
    Napi::Object o = optionsArg(info);
    uint32_t seed = optUint(o, "idSeed", 1);
    // Stands in for the kernel's conn_states: what setKernelMessage said last.
    auto lookup = [this](uint32_t pid, int32_t fd, uint32_t generation, uint32_t seq, KernelMessage* out) {
      auto it = kernel_.find((uint64_t(pid) << 32) | uint32_t(fd));
      if (it == kernel_.end() || it->second.generation != generation || it->second.seq != seq) return false;
      *out = it->second.message;
      return true;
    };
    tracker_ = std::make_unique<ConnTracker>(trackerOptionsFrom(o), lookup, seed ? seed : 1);
  }

 private:
  // feed(event: Buffer): void — one ring-buffer record
  Napi::Value JS_feed(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsBuffer())
      throw Napi::TypeError::New(info.Env(), "Expected first argument to be a Buffer");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    tracker_->onEvent(buf.Data(), buf.Length());
    return info.Env().Undefined();
  }
  // tick(nowNs: bigint): void
  Napi::Value JS_tick(const Napi::CallbackInfo& info) {
    tracker_->onTick(bigintArg(info, 0, "first argument"));
    return info.Env().Undefined();
  }
  // finish(nowNs: bigint): void
  Napi::Value JS_finish(const Napi::CallbackInfo& info) {
    tracker_->finishAll(bigintArg(info, 0, "first argument"));
    return info.Env().Undefined();
  }
  // take(): Buffer
  Napi::Value JS_take(const Napi::CallbackInfo& info) {
    auto* out = new std::vector<uint8_t>();
    tracker_->takeOutput(out);
    return bufferFrom(info.Env(), out);
  }
  Napi::Value JS_counters(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    putTrackerCounters(out, tracker_->counters());
    return out;
  }

  // setKernelMessage(pid, fd, generation, seq, lastChunkNs: bigint, totalBytes, tail: Buffer): void
  // — the kernel's view of that connection's current message, as the live
  // tracer would read it from conn_states.
  Napi::Value JS_setKernelMessage(const Napi::CallbackInfo& info) {
    if (info.Length() < 7 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
        !info[5].IsNumber() || !info[6].IsBuffer())
      throw Napi::TypeError::New(info.Env(), "Expected arguments (pid, fd, generation, seq, lastChunkNs, totalBytes, tail)");
    KernelEntry e;
    e.generation = info[2].As<Napi::Number>().Uint32Value();
    e.seq = info[3].As<Napi::Number>().Uint32Value();
    e.message.last_chunk_ns = bigintArg(info, 4, "fifth argument");
    e.message.total_bytes = uint64_t(info[5].As<Napi::Number>().DoubleValue());
    auto tail = info[6].As<Napi::Buffer<uint8_t>>();
    size_t n = std::min<size_t>(tail.Length(), SONDE_TAIL_BYTES);
    // as the kernel keeps it: the last bytes of the chunk
    std::memcpy(e.message.tail, tail.Data() + tail.Length() - n, n);
    e.message.tail_bytes = uint8_t(n);
    uint64_t key = (uint64_t(info[0].As<Napi::Number>().Uint32Value()) << 32) | uint32_t(info[1].As<Napi::Number>().Int32Value());
    kernel_[key] = e;
    return info.Env().Undefined();
  }

  struct KernelEntry {
    uint32_t generation = 0;
    uint32_t seq = 0;
    KernelMessage message;
  };
  std::unordered_map<uint64_t, KernelEntry> kernel_;
  std::unique_ptr<ConnTracker> tracker_;
};

template <size_t N>
Napi::Array stringArray(Napi::Env env, const char* const (&items)[N]) {
  Napi::Array out = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; i++) out.Set(uint32_t(i), items[i]);
  return out;
}

// uprobeSite(path, symbol, moves: { throughWrapper?, pastNullCheck? }):
// where the tracer would put a uprobe on `symbol` (UprobeSite.h), or null
// when the file lacks it; for tests.
Napi::Value JS_uprobeSite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsObject())
    throw Napi::TypeError::New(env, "Expected arguments (path: string, symbol: string, moves: object)");
  sonde::ElfCode elf(info[0].As<Napi::String>().Utf8Value());
  if (!elf.ok()) throw Napi::Error::New(env, elf.error());
  Napi::Object options = info[2].As<Napi::Object>();
  sonde::UprobeSiteMoves moves;
  moves.through_wrapper = options.Get("throughWrapper").ToBoolean().Value();
  moves.past_null_check = options.Get("pastNullCheck").ToBoolean().Value();
  sonde::UprobeSite site;
  if (!sonde::findUprobeSite(elf, info[1].As<Napi::String>().Utf8Value(), moves, &site)) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  uint64_t entry_offset = 0;
  elf.fileOffset(site.entry_vaddr, &entry_offset);
  out.Set("entryOffset", double(entry_offset));
  out.Set("fileOffset", double(site.file_offset));
  out.Set("viaCallee", site.via_callee);
  out.Set("pastNullCheck", site.past_null_check);
  out.Set("emulated", site.emulated);
  return out;
}

// tlsProbePlan(path): where the tracer puts its OpenSSL programs in the file
// (TlsProbePlan.h), in attach order: [{ symbol, program, withReturn,
// required, coveredByPrevious, fileOffset (null: by name), emulated }].
// For the benchmark's floor probes and for tests.
Napi::Value JS_tlsProbePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected argument (path: string)");
  sonde::ElfCode elf(info[0].As<Napi::String>().Utf8Value());
  if (!elf.ok()) throw Napi::Error::New(env, elf.error());
  std::vector<sonde::TlsProbePlacement> plan = sonde::planTlsProbes(elf);
  Napi::Array out = Napi::Array::New(env, plan.size());
  for (size_t i = 0; i < plan.size(); i++) {
    const sonde::TlsProbePlacement& at = plan[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("symbol", at.symbol);
    o.Set("program", sonde::tlsProgramName(at.program));
    o.Set("withReturn", at.with_return);
    o.Set("required", at.required);
    o.Set("coveredByPrevious", at.covered_by_previous);
    o.Set("fileOffset", at.found ? Napi::Value(Napi::Number::New(env, double(at.site.file_offset))) : env.Null());
    o.Set("emulated", at.found && at.site.emulated);
    out.Set(uint32_t(i), o);
  }
  return out;
}

// layout(): sizes and offsets of the wire structs, for the decoder test.
Napi::Value JS_layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Object rec = Napi::Object::New(env);
#define SONDE_OFFSET(obj, type, field) obj.Set(#field, Napi::Number::New(env, double(offsetof(type, field))))
  rec.Set("size", Napi::Number::New(env, double(sizeof(ExchangeRecord))));
  SONDE_OFFSET(rec, ExchangeRecord, record_bytes);
  SONDE_OFFSET(rec, ExchangeRecord, role);
  SONDE_OFFSET(rec, ExchangeRecord, flags);
  SONDE_OFFSET(rec, ExchangeRecord, link_source);
  SONDE_OFFSET(rec, ExchangeRecord, trace_flags);
  SONDE_OFFSET(rec, ExchangeRecord, pid);
  SONDE_OFFSET(rec, ExchangeRecord, tid);
  SONDE_OFFSET(rec, ExchangeRecord, fd);
  SONDE_OFFSET(rec, ExchangeRecord, generation);
  SONDE_OFFSET(rec, ExchangeRecord, family);
  SONDE_OFFSET(rec, ExchangeRecord, local_port);
  SONDE_OFFSET(rec, ExchangeRecord, remote_port);
  SONDE_OFFSET(rec, ExchangeRecord, protocol);
  SONDE_OFFSET(rec, ExchangeRecord, source);
  SONDE_OFFSET(rec, ExchangeRecord, local_addr);
  SONDE_OFFSET(rec, ExchangeRecord, remote_addr);
  SONDE_OFFSET(rec, ExchangeRecord, request_start_ns);
  SONDE_OFFSET(rec, ExchangeRecord, request_end_ns);
  SONDE_OFFSET(rec, ExchangeRecord, response_start_ns);
  SONDE_OFFSET(rec, ExchangeRecord, response_end_ns);
  SONDE_OFFSET(rec, ExchangeRecord, request_bytes);
  SONDE_OFFSET(rec, ExchangeRecord, response_bytes);
  SONDE_OFFSET(rec, ExchangeRecord, trace_id);
  SONDE_OFFSET(rec, ExchangeRecord, span_id);
  SONDE_OFFSET(rec, ExchangeRecord, parent_span_id);
  SONDE_OFFSET(rec, ExchangeRecord, comm);
  SONDE_OFFSET(rec, ExchangeRecord, request_payload_bytes);
  SONDE_OFFSET(rec, ExchangeRecord, response_payload_bytes);
  SONDE_OFFSET(rec, ExchangeRecord, stream_id);
  SONDE_OFFSET(rec, ExchangeRecord, end_error_code);
  out.Set("exchangeRecord", rec);

  Napi::Object entry = Napi::Object::New(env);
  entry.Set("size", Napi::Number::New(env, double(sizeof(EncodedSpanEntry))));
  SONDE_OFFSET(entry, EncodedSpanEntry, entry_bytes);
  SONDE_OFFSET(entry, EncodedSpanEntry, record_offset);
  SONDE_OFFSET(entry, EncodedSpanEntry, span_bytes);
  SONDE_OFFSET(entry, EncodedSpanEntry, start_time_at);
  SONDE_OFFSET(entry, EncodedSpanEntry, end_time_at);
  SONDE_OFFSET(entry, EncodedSpanEntry, status_code);
  SONDE_OFFSET(entry, EncodedSpanEntry, method);
  SONDE_OFFSET(entry, EncodedSpanEntry, http_minor);
  SONDE_OFFSET(entry, EncodedSpanEntry, end_ns);
  SONDE_OFFSET(entry, EncodedSpanEntry, server_address_at);
  SONDE_OFFSET(entry, EncodedSpanEntry, server_address_bytes);
  SONDE_OFFSET(entry, EncodedSpanEntry, server_port);
  SONDE_OFFSET(entry, EncodedSpanEntry, name_at);
  SONDE_OFFSET(entry, EncodedSpanEntry, name_bytes);
  SONDE_OFFSET(entry, EncodedSpanEntry, shape);
  out.Set("encodedSpanEntry", entry);
  out.Set("encodedSpanMethods", stringArray(env, kEncodedSpanMethods));
  out.Set("redactionHints", stringArray(env, kRedactionHints));

  Napi::Object ev = Napi::Object::New(env);
  ev.Set("msgStartHeaderBytes", Napi::Number::New(env, double(SONDE_MSG_START_HEADER_BYTES)));
  ev.Set("closeEventBytes", Napi::Number::New(env, double(sizeof(sonde_close_event))));
  ev.Set("selfConnectEventBytes", Napi::Number::New(env, double(sizeof(sonde_self_connect_event))));
  ev.Set("processExitEventBytes", Napi::Number::New(env, double(sizeof(sonde_process_exit_event))));
  ev.Set("headerBytes", Napi::Number::New(env, double(sizeof(sonde_event_header))));
  ev.Set("sourceOffset", Napi::Number::New(env, double(offsetof(sonde_event_header, source))));
  ev.Set("protocolOffset", Napi::Number::New(env, double(offsetof(sonde_event_header, protocol))));
  ev.Set("causeFdOffset", Napi::Number::New(env, double(offsetof(sonde_event_header, cause_fd))));
  ev.Set("causeGenerationOffset", Napi::Number::New(env, double(offsetof(sonde_event_header, cause_generation))));
  ev.Set("connectEventBytes", Napi::Number::New(env, double(sizeof(sonde_connect_event))));
  ev.Set("tupleOffset", Napi::Number::New(env, double(offsetof(sonde_msg_start_event, tuple))));
  ev.Set("prevOffset", Napi::Number::New(env, double(offsetof(sonde_msg_start_event, prev))));
  ev.Set("commOffset", Napi::Number::New(env, double(offsetof(sonde_msg_start_event, comm))));
  ev.Set("chunkBytesOffset", Napi::Number::New(env, double(offsetof(sonde_msg_start_event, chunk_bytes))));
  ev.Set("payloadBytesOffset", Napi::Number::New(env, double(offsetof(sonde_msg_start_event, payload_bytes))));
  ev.Set("maxPayloadBytes", Napi::Number::New(env, double(SONDE_MAX_PAYLOAD_BYTES)));
  ev.Set("msgContinueHeaderBytes", Napi::Number::New(env, double(SONDE_MSG_CONTINUE_HEADER_BYTES)));
  ev.Set("maxHeadBytes", Napi::Number::New(env, double(SONDE_MAX_HEAD_BYTES)));
  ev.Set("h2FramesHeaderBytes", Napi::Number::New(env, double(SONDE_H2_FRAMES_HEADER_BYTES)));
  ev.Set("h2EventBytes", Napi::Number::New(env, double(SONDE_H2_EVENT_BYTES)));
  ev.Set("h2CopyBound", Napi::Number::New(env, double(SONDE_H2_COPY_BOUND)));
  ev.Set("h2ChunkBytesOffset", Napi::Number::New(env, double(offsetof(sonde_h2_frames_event, chunk_bytes))));
  ev.Set("h2PayloadBytesOffset", Napi::Number::New(env, double(offsetof(sonde_h2_frames_event, payload_bytes))));
  ev.Set("h2FirstFrameOffsetOffset", Napi::Number::New(env, double(offsetof(sonde_h2_frames_event, first_frame_offset))));
  ev.Set("h2FlagsOffset", Napi::Number::New(env, double(offsetof(sonde_h2_frames_event, flags))));
  out.Set("events", ev);

  // Enums and flags that tests and decoders spell out in TypeScript.
  Napi::Object kinds = Napi::Object::New(env);
  kinds.Set("MsgStart", Napi::Number::New(env, SONDE_EV_MSG_START));
  kinds.Set("Close", Napi::Number::New(env, SONDE_EV_CLOSE));
  kinds.Set("SelfConnect", Napi::Number::New(env, SONDE_EV_SELF_CONNECT));
  kinds.Set("ProcessExit", Napi::Number::New(env, SONDE_EV_PROCESS_EXIT));
  kinds.Set("MsgContinue", Napi::Number::New(env, SONDE_EV_MSG_CONTINUE));
  kinds.Set("H2Frames", Napi::Number::New(env, SONDE_EV_H2_FRAMES));
  kinds.Set("Connect", Napi::Number::New(env, SONDE_EV_CONNECT));
  out.Set("eventKinds", kinds);
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("NoResponse", Napi::Number::New(env, kNoResponse));
  flags.Set("ClosedBeforeResponse", Napi::Number::New(env, kClosedBeforeResponse));
  flags.Set("EndEstimated", Napi::Number::New(env, kEndEstimated));
  flags.Set("EventsLost", Napi::Number::New(env, kEventsLost));
  flags.Set("PreexistingConnection", Napi::Number::New(env, kPreexistingConnection));
  flags.Set("ResponseIncomplete", Napi::Number::New(env, kResponseIncomplete));
  flags.Set("HeadersIncomplete", Napi::Number::New(env, kHeadersIncomplete));
  flags.Set("StreamReset", Napi::Number::New(env, kStreamReset));
  out.Set("exchangeFlags", flags);
  // Named as test/native/fakeEvents.ts (Dir, Role, Cls) and
  // src/native/exchangeDecoder.ts (LinkSource, ExchangeProtocol,
  // EXCHANGE_ROLE_CODES) spell them.
  auto enumObject = [&](std::initializer_list<std::pair<const char*, int>> members) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& [name, value] : members) o.Set(name, Napi::Number::New(env, value));
    return o;
  };
  out.Set("directions", enumObject({{"None", SONDE_DIR_NONE}, {"Ingress", SONDE_DIR_INGRESS}, {"Egress", SONDE_DIR_EGRESS}}));
  out.Set("roleHints", enumObject({{"Unknown", SONDE_ROLE_UNKNOWN}, {"Server", SONDE_ROLE_SERVER}, {"Client", SONDE_ROLE_CLIENT}}));
  out.Set("sources", enumObject({{"Socket", SONDE_SOURCE_SOCKET}, {"Tls", SONDE_SOURCE_TLS}}));
  out.Set("connProtocols", enumObject({{"Unknown", SONDE_PROTO_UNKNOWN}, {"Http1", SONDE_PROTO_HTTP1}, {"Http2", SONDE_PROTO_HTTP2}}));
  out.Set("msgClasses", enumObject({{"Unknown", SONDE_CLASS_UNKNOWN},
                                    {"Request", SONDE_CLASS_HTTP1_REQUEST},
                                    {"Response", SONDE_CLASS_HTTP1_RESPONSE},
                                    {"H2Preface", SONDE_CLASS_HTTP2_PREFACE},
                                    {"H2Frames", SONDE_CLASS_HTTP2_FRAMES}}));
  out.Set("h2FramesFlags", enumObject({{"SyncStart", SONDE_H2_SYNC_START},
                                       {"MidLife", SONDE_H2_MID_LIFE},
                                       {"Lost", SONDE_H2_LOST}}));
  out.Set("linkSources", enumObject({{"None", int(LinkSource::None)},
                                     {"TraceparentHeader", int(LinkSource::TraceparentHeader)},
                                     {"PeerClient", int(LinkSource::PeerClient)},
                                     {"EnclosingServer", int(LinkSource::EnclosingServer)},
                                     {"CausingRead", int(LinkSource::CausingRead)},
                                     {"ConnectTime", int(LinkSource::ConnectTime)}}));
  out.Set("protocols", enumObject({{"Http1", int(Protocol::Http1)}, {"Http2", int(Protocol::Http2)}}));
  out.Set("encodedSpanShapes", enumObject({{"Http", int(EncodedSpanShape::Http)}, {"Grpc", int(EncodedSpanShape::Grpc)}, {"Http2", int(EncodedSpanShape::Http2)}}));
  out.Set("exchangeRoles", enumObject({{"server", int(ExchangeRole::Server)}, {"client", int(ExchangeRole::Client)}}));
#undef SONDE_OFFSET
  return out;
}

// clock(): [realtimeNs: bigint, monotonicNs: bigint], the monotonic time
// being the midpoint of the tightest of a few mono/real/mono brackets. On a
// VM the thread can lose its core between two reads for tens of µs; a pair
// read once would carry that gap into the offset, and so shift every span
// converted with it against the spans of the same trace converted before.
Napi::Value JS_clock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t real = 0, mono = 0, tightest_gap = UINT64_MAX;
  for (int attempt = 0; attempt < 5; attempt++) {
    uint64_t before = monotonicNowNs();
    uint64_t r = realtimeNowNs();
    uint64_t after = monotonicNowNs();
    if (after - before < tightest_gap) {
      tightest_gap = after - before;
      real = r;
      mono = before + (after - before) / 2;
    }
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::BigInt::New(env, real));
  out.Set(uint32_t(1), Napi::BigInt::New(env, mono));
  return out;
}

// encodeSpans(records: Buffer): Buffer — what the reader thread hands over
// with a batch when the option encodeSpans is on (EncodedSpans.h): the
// golden test and the bench call it on records of their own.
Napi::Value JS_encodeSpans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "Expected first argument to be a Buffer of exchange records");
  auto records = info[0].As<Napi::Buffer<uint8_t>>();
  auto* out = new EncodedBytes();
  encodeSpans(records.Data(), records.Length(), *out);
  return bufferFrom(env, out);
}

// batchBounds(records: Buffer, maxBytes: number): number[] — where the
// reader cuts a poll's records into batches (batchEnd in RecordWriter.h):
// [end, count, end, count, ...].
Napi::Value JS_batchBounds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "Expected arguments (records: Buffer, maxBytes: number)");
  auto records = info[0].As<Napi::Buffer<uint8_t>>();
  size_t max_bytes = size_t(info[1].As<Napi::Number>().Int64Value());
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (size_t at = 0; at < records.Length();) {
    size_t count;
    size_t end = batchEnd(records.Data(), records.Length(), at, max_bytes, &count);
    out.Set(i++, Napi::Number::New(env, double(end)));
    out.Set(i++, Napi::Number::New(env, double(count)));
    at = end;
  }
  return out;
}

// threadCpuMs(): CPU time of the calling thread, ms. sonde's JavaScript
// thread measures its own parts with it: wall time would also count the
// moments the scheduler gave its core to the services it traces.
Napi::Value JS_threadCpuMs(const Napi::CallbackInfo& info) {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return Napi::Number::New(info.Env(), double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6);
}

// listeningTcpSockets(netnsPath?: string): number[] — [inode, port, inode,
// port, ...] of the TCP listeners in the network namespace of that
// /proc/PID/ns/net file, or in sonde's own; throws when the kernel cannot
// say (ListeningSockets.h).
Napi::Value JS_listeningTcpSockets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netnsPath;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a /proc/PID/ns/net path or nothing");
    netnsPath = info[0].As<Napi::String>().Utf8Value();
  }
  std::vector<ListeningSocket> sockets;
  std::string error;
  if (!listeningTcpSockets(netnsPath, sockets, &error)) throw Napi::Error::New(env, error);
  Napi::Array out = Napi::Array::New(env, sockets.size() * 2);
  uint32_t i = 0;
  for (const ListeningSocket& s : sockets) {
    out.Set(i++, Napi::Number::New(env, double(s.inode)));
    out.Set(i++, Napi::Number::New(env, double(s.port)));
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Tracer", Tracer::Define(env));
  exports.Set("ReplayTracker", ReplayTracker::Define(env));
  exports.Set("layout", Napi::Function::New(env, JS_layout));
  exports.Set("uprobeSite", Napi::Function::New(env, JS_uprobeSite));
  exports.Set("tlsProbePlan", Napi::Function::New(env, JS_tlsProbePlan));
  exports.Set("clock", Napi::Function::New(env, JS_clock));
  exports.Set("threadCpuMs", Napi::Function::New(env, JS_threadCpuMs));
  exports.Set("encodeSpans", Napi::Function::New(env, JS_encodeSpans));
  exports.Set("batchBounds", Napi::Function::New(env, JS_batchBounds));
  exports.Set("listeningTcpSockets", Napi::Function::New(env, JS_listeningTcpSockets));
  // A test hook, not for production use: see http2TestHook.h.
  exports.Set("http2Test", http2TestHook(env));
  return exports;
}

}  // namespace
}  // namespace sonde

static Napi::Object InitSondeNative(Napi::Env env, Napi::Object exports) { return sonde::Init(env, exports); }

NODE_API_MODULE(sonde_native, InitSondeNative)
