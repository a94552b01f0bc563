// Lifecycle of the kernel side: load and attach the CO-RE programs, read the
// ring buffer on a dedicated thread in batches, feed the connection tracker,
// and hand finished exchanges to a sink. Detaching destroys every link, so a
// stopped tracer leaves no probe behind (and the kernel drops them on its own
// if the process dies, since links are file descriptors).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ConnTracker.h"

struct sock_trace;
struct ring_buffer;
struct bpf_link;
struct bpf_program;

namespace sonde {

struct UprobeSite;

struct BpfTracerOptions {
  uint32_t self_pid = 0;
  bool trace_all_pids = false;
  uint32_t payload_capture_bytes = 1024;
  uint32_t ring_buffer_bytes = 4u << 20;
  // The reader's longest wait between drains; the kernel wakes it sooner
  // once a quarter of the ring buffer is waiting (bpf/lib/maps.bpf.h).
  uint32_t poll_interval_ms = 1000;
  // A delivered batch holds at most this many bytes of records (one record
  // more only when it alone is larger).
  uint32_t max_batch_bytes = 128u << 10;
  TrackerOptions tracker;
};

struct AttachReport {
  std::vector<std::string> attached;  // section names of the programs attached at start
  std::vector<std::string> on_demand; // loaded too, attached per process later (uprobes)
};

// Receives `exchanges` serialized ExchangeRecords, valid during the call;
// called on the reader thread. Returns false when the batch could not be
// queued (it is then counted as dropped).
using BatchSink = std::function<bool(const uint8_t* records, size_t bytes, size_t exchanges)>;

class BpfTracer {
 public:
  explicit BpfTracer(const BpfTracerOptions& options);
  ~BpfTracer();

  // Throws std::runtime_error with a "verb object: cause" message.
  AttachReport start(BatchSink sink);
  // Joins the reader, closes out responses in flight and returns the last
  // records; then detaches everything.
  std::vector<uint8_t> stop();

  // with_descendants: the kernel selects the processes it forks from now on.
  void setPidSelected(uint32_t pid, bool selected, bool with_descendants = false);
  // Processes that exec a program with this command name (at most 15
  // characters, as the kernel keeps it) are selected by the kernel.
  void selectComm(const std::string& comm);
  // Execs on the host since the programs were attached; -1 before that
  // and after stop (nothing counted them then).
  int64_t execCount() const;
  // Processes forked, exec'd, exited or reaped on the host since attach;
  // -1 when execCount() is.
  int64_t processChangeCount() const;
  // Where a node binary runs JavaScript that no read called for, mangled:
  // node::Environment::RunTimers (timers) and the public node::MakeCallback
  // (setImmediate callbacks, which Environment::CheckImmediate runs through
  // it only when some are due, and addons' callbacks). Node's own stream
  // reads do not go through it.
  static constexpr const char* kNodeRunTimersSymbol = "_ZN4node11Environment9RunTimersEP10uv_timer_s";
  static constexpr const char* kNodeMakeCallbackSymbol =
      "_ZN4node12MakeCallbackEPN2v87IsolateENS0_5LocalINS0_6ObjectEEENS3_INS0_8FunctionEEEiPNS3_INS0_5ValueEEENS_"
      "13async_contextE";
  // Marks where process `pid`'s event loop runs JavaScript no read called
  // for (its executable exports kNodeRunTimersSymbol; kNodeMakeCallbackSymbol
  // too, where it has it). Returns "" once attached (or already), else why
  // not. Uprobes per process: none on the ones not traced.
  std::string attachEventLoopMarks(uint32_t pid, const std::string& executable);
  void detachEventLoopMarks(uint32_t pid);
  // Attaches the OpenSSL uprobes (SSL_read, SSL_write, their _ex forms,
  // SSL_do_handshake, SSL_free) to the library or binary at `path`: for
  // process `pid` alone, or with pid -1 for every process that maps it (the
  // programs skip processes that are not selected, but each still takes
  // the trap). Returns "" once attached (or already), else why not: a file
  // without SSL_read and SSL_write is not OpenSSL. The others are attached
  // where present (the _ex forms are OpenSSL 1.1.1+). Each probe sits where
  // the kernel need not single-step it when there is such a site
  // (UprobeSite.h); `placement` gets where each went, for the log.
  std::string attachTls(const std::string& path, int pid, std::string* placement = nullptr);
  // Detaches the uprobes attached for process `pid` alone.
  void detachTls(int pid);
  std::vector<uint64_t> kernelDrops() const;  // indexed by sonde_kernel_drop
  const TrackerCounters& trackerCounters() const { return tracker_->counters(); }
  uint64_t batchesDropped() const { return batches_dropped_.load(); }
  uint64_t exchangesDropped() const { return exchanges_dropped_.load(); }
  uint64_t ringBufferPolls() const { return polls_.load(); }
  bool running() const { return running_.load(); }

 private:
  // Entry `what` (enum sonde_process_count) of the process_counts map; -1 when not running.
  int64_t processCount(uint32_t what) const;
  static int onRingRecord(void* ctx, void* data, size_t len);
  // At `site`, or at `symbol`'s entry as libbpf finds it when site is null.
  static bpf_link* attachUprobe(bpf_program* prog, bool ret, const std::string& path, int pid,
                                const std::string& symbol, const UprobeSite* site);
  void readLoop();
  void deliver();
  // Hands over the first full batch of the tracker's output, while a drain goes on.
  void deliverFullBatch();
  void sendBatch(const uint8_t* records, size_t bytes, size_t count);
  size_t selectedPidBitsBytes() const;
  bool lookupCurrentMessage(uint32_t pid, int32_t fd, uint32_t generation, uint32_t seq, KernelMessage* out);

  BpfTracerOptions options_;
  sock_trace* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  // The kernel's selected_pid_bits, mapped: one bit per pid.
  uint64_t* selected_pid_bits_ = nullptr;
  size_t selected_pid_words_ = 0;
  std::unique_ptr<ConnTracker> tracker_;
  BatchSink sink_;
  std::thread reader_;
  std::atomic<bool> running_{false};
  int wake_fd_ = -1;  // eventfd: stop() wakes the reader out of its wait
  std::atomic<uint64_t> batches_dropped_{0};
  std::atomic<uint64_t> exchanges_dropped_{0};
  std::atomic<uint64_t> polls_{0};
  std::vector<uint64_t> final_kernel_drops_;  // read as the maps went away
  std::unordered_map<uint32_t, std::vector<struct bpf_link*>> event_loop_links_;  // by pid
  // By library path and pid (-1: every process).
  std::map<std::pair<std::string, int>, std::vector<struct bpf_link*>> tls_links_;
  std::vector<uint8_t> delivering_;  // swapped with the tracker's output: both keep their capacity
};

uint64_t monotonicNowNs();
uint64_t realtimeNowNs();

}  // namespace sonde
