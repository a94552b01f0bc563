#include "BpfTracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "TlsProbePlan.h"
#include "UprobeSite.h"
#include "sock_trace.skel.h"

namespace sonde {
namespace {

// libbpf explains failures (verifier logs, missing tracefs) only through its
// print callback: keep the tail of what it said for the error message.
std::mutex g_libbpf_log_mutex;
std::string g_libbpf_log;

// The largest pid plus one; the kernel's own limit (2^22) when unreadable.
uint32_t pidMax() {
  uint32_t value = 0;
  if (FILE* f = std::fopen("/proc/sys/kernel/pid_max", "r")) {
    if (std::fscanf(f, "%u", &value) != 1) value = 0;
    std::fclose(f);
  }
  return value > 0 && value <= (1u << 22) ? value : (1u << 22);
}

int collectLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  vsnprintf(line, sizeof(line), fmt, args);
  std::lock_guard<std::mutex> lock(g_libbpf_log_mutex);
  g_libbpf_log += line;
  if (g_libbpf_log.size() > 16384) g_libbpf_log.erase(0, g_libbpf_log.size() - 16384);
  return 0;
}

std::string takeLibbpfLog() {
  std::lock_guard<std::mutex> lock(g_libbpf_log_mutex);
  std::string out;
  out.swap(g_libbpf_log);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

[[noreturn]] void fail(const std::string& what, int err) {
  std::string msg = what + ": " + strerror(err < 0 ? -err : err);
  std::string log = takeLibbpfLog();
  if (!log.empty()) msg += "\nlibbpf: " + log;
  throw std::runtime_error(msg);
}

constexpr size_t kDeliverAtBytes = 1 << 20;

}  // namespace

uint64_t monotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

uint64_t realtimeNowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

BpfTracer::BpfTracer(const BpfTracerOptions& options) : options_(options) {
  tracker_ = std::make_unique<ConnTracker>(
      options_.tracker, [this](uint32_t pid, int32_t fd, uint32_t gen, uint32_t seq, KernelMessage* out) {
        return lookupCurrentMessage(pid, fd, gen, seq, out);
      });
}

BpfTracer::~BpfTracer() {
  if (running_.load() || skel_) stop();
}

AttachReport BpfTracer::start(BatchSink sink) {
  if (skel_) throw std::runtime_error("start tracer: already started");
  libbpf_set_print(collectLibbpfLog);
  takeLibbpfLog();
  sink_ = std::move(sink);

  skel_ = sock_trace__open();
  if (!skel_) fail("open BPF object", errno);
  skel_->rodata->self_pid = options_.self_pid;
  skel_->rodata->trace_all_pids = options_.trace_all_pids ? 1 : 0;
  skel_->rodata->payload_capture_bytes = options_.payload_capture_bytes;
  // Wake the reader early only when a quarter of the buffer is waiting.
  skel_->rodata->wakeup_threshold_bytes = options_.ring_buffer_bytes / 4;
  int err = bpf_map__set_max_entries(skel_->maps.events, options_.ring_buffer_bytes);
  if (err) {
    sock_trace__destroy(skel_);
    skel_ = nullptr;
    fail("size ring buffer", err);
  }
  selected_pid_words_ = (size_t(pidMax()) + 63) / 64;
  err = bpf_map__set_max_entries(skel_->maps.selected_pid_bits, uint32_t(selected_pid_words_));
  if (err) {
    sock_trace__destroy(skel_);
    skel_ = nullptr;
    fail("size the selected pid bitmap", err);
  }
  {
    // The verifier gives up with EAGAIN whenever a signal is pending for
    // the loading thread, and libbpf's five retries lose to any signal that
    // comes more often than a program verifies (node --cpu-prof's SIGPROF,
    // every millisecond, failed every load). Blocked, a signal waits the
    // load out and is delivered after it.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    err = sock_trace__load(skel_);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }
  if (err) {
    sock_trace__destroy(skel_);
    skel_ = nullptr;
    fail("load BPF programs", err);
  }

  // Attach one by one, so that a failure names the hook that is missing.
  // Links go into the skeleton's table: sock_trace__destroy frees them.
  AttachReport report;
  for (int i = 0; i < skel_->skeleton->prog_cnt; i++) {
    bpf_program* prog = *skel_->skeleton->progs[i].prog;
    if (!bpf_program__autoload(prog)) continue;
    // uprobes name no binary in their section: attached per process or
    // per library later.
    const char* section = bpf_program__section_name(prog);
    if (std::strncmp(section, "uprobe", 6) == 0 || std::strncmp(section, "uretprobe", 9) == 0) {
      report.on_demand.push_back(bpf_program__name(prog));
      continue;
    }
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      int e = errno;
      std::string what = std::string("attach ") + bpf_program__name(prog) + " (" + bpf_program__section_name(prog) + ")";
      sock_trace__destroy(skel_);
      skel_ = nullptr;
      fail(what, e);
    }
    *skel_->skeleton->progs[i].link = link;
    report.attached.push_back(bpf_program__section_name(prog));
  }

  ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), onRingRecord, this, nullptr);
  if (!ring_) {
    int e = errno;
    sock_trace__destroy(skel_);
    skel_ = nullptr;
    fail("open ring buffer", e);
  }
  // Nothing is selected before this map is: the programs attached above
  // see every bit clear until then.
  void* bits = mmap(nullptr, selectedPidBitsBytes(), PROT_READ | PROT_WRITE, MAP_SHARED,
                    bpf_map__fd(skel_->maps.selected_pid_bits), 0);
  if (bits == MAP_FAILED) {
    int e = errno;
    ring_buffer__free(ring_);
    ring_ = nullptr;
    sock_trace__destroy(skel_);
    skel_ = nullptr;
    fail("map the selected pid bitmap", e);
  }
  selected_pid_bits_ = static_cast<uint64_t*>(bits);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int e = errno;
    stop();  // undoes what start() made so far: no reader runs yet
    fail("create the reader's wake-up eventfd", e);
  }
  running_.store(true);
  reader_ = std::thread([this] { readLoop(); });
  return report;
}

int BpfTracer::onRingRecord(void* ctx, void* data, size_t len) {
  auto* self = static_cast<BpfTracer*>(ctx);
  self->tracker_->onEvent(static_cast<const uint8_t*>(data), len);
  // One drain at a high rate is megabytes of records (6,000 gRPC calls at
  // 20k a second): each batch goes as soon as it is full, so that the
  // tracker's output and the reader's copy of it stay a batch long instead
  // of holding the whole drain, and the JavaScript thread starts on it
  // sooner. stop() drains while not running: what it finds is returned.
  if (self->running_.load(std::memory_order_relaxed))
    while (self->tracker_->outputBytes() >= self->options_.max_batch_bytes) self->deliverFullBatch();
  return 0;
}

void BpfTracer::readLoop() {
  pthread_setname_np(pthread_self(), "sonde-reader");
  // The ring buffer's epoll fd is readable when the kernel wakes it (a
  // quarter of the buffer waiting), the eventfd when stop() does.
  pollfd waits[2] = {{ring_buffer__epoll_fd(ring_), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  // Every drain costs the reader and the JavaScript thread a batch's fixed
  // work on cold caches, whatever it holds: at a thousand requests a second
  // draining every 100 ms instead of every second cost sonde a fifth more
  // CPU in all (docs/design-notes.md, "Batches"). A high rate is still
  // drained as soon as a quarter of the buffer is waiting.
  const int wait_ms = int(std::max<uint32_t>(options_.poll_interval_ms, 1));
  while (running_.load(std::memory_order_relaxed)) {
    // The kernel side never wakes us per event; the timeout is the normal
    // way out, and consume() then drains whatever accumulated.
    poll(waits, 2, wait_ms);
    ring_buffer__consume(ring_);
    polls_.fetch_add(1, std::memory_order_relaxed);
    tracker_->onTick(monotonicNowNs());
    deliver();
  }
}

void BpfTracer::deliver() {
  if (!tracker_->hasOutput()) return;
  tracker_->takeOutput(&delivering_);
  // Batches of at most max_batch_bytes, cut at record boundaries: the
  // JavaScript side lends buffers of a fixed size, and at a high rate one
  // poll's records are megabytes.
  const uint8_t* records = delivering_.data();
  size_t total = delivering_.size();
  for (size_t at = 0; at < total;) {
    size_t count;
    size_t end = batchEnd(records, total, at, options_.max_batch_bytes, &count);
    sendBatch(records + at, end - at, count);
    at = end;
  }
  delivering_.clear();
}

void BpfTracer::deliverFullBatch() {
  size_t count;
  size_t end = batchEnd(tracker_->outputData(), tracker_->outputBytes(), 0, options_.max_batch_bytes, &count);
  sendBatch(tracker_->outputData(), end, count);
  tracker_->dropOutputFront(end);
}

void BpfTracer::sendBatch(const uint8_t* records, size_t bytes, size_t count) {
  if (!sink_ || !sink_(records, bytes, count)) {
    batches_dropped_.fetch_add(1, std::memory_order_relaxed);
    exchanges_dropped_.fetch_add(count, std::memory_order_relaxed);
  }
}

std::vector<uint8_t> BpfTracer::stop() {
  if (running_.exchange(false) && reader_.joinable()) {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) {
      // Only a full counter fails, and it already wakes the reader.
    }
    reader_.join();
  }
  if (wake_fd_ >= 0) {
    close(wake_fd_);
    wake_fd_ = -1;
  }
  std::vector<uint8_t> last;
  if (ring_) {
    ring_buffer__consume(ring_);
    tracker_->finishAll(monotonicNowNs());
    tracker_->takeOutput(&last);
    ring_buffer__free(ring_);
    ring_ = nullptr;
  }
  for (auto& [where, links] : tls_links_)
    for (bpf_link* link : links) bpf_link__destroy(link);
  tls_links_.clear();
  for (auto& [pid, links] : event_loop_links_)
    for (bpf_link* link : links) bpf_link__destroy(link);
  event_loop_links_.clear();
  if (selected_pid_bits_) {
    munmap(selected_pid_bits_, selectedPidBitsBytes());
    selected_pid_bits_ = nullptr;
  }
  if (skel_) {
    final_kernel_drops_ = kernelDrops();
    sock_trace__destroy(skel_);
    skel_ = nullptr;
  }
  return last;
}

bpf_link* BpfTracer::attachUprobe(bpf_program* prog, bool ret, const std::string& path, int pid,
                                  const std::string& symbol, const UprobeSite* site) {
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
  uint64_t offset = 0;
  if (site)
    offset = site->file_offset;
  else
    opts.func_name = symbol.c_str();
  return bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), offset, &opts);
}

std::string BpfTracer::attachEventLoopMarks(uint32_t pid, const std::string& executable) {
  if (!skel_) return "not started";
  if (event_loop_links_.count(pid)) return "";
  ElfCode elf(executable);
  auto attach = [&](const char* symbol) -> bpf_link* {
    UprobeSite site;
    bool found = elf.ok() && findUprobeSite(elf, symbol, {}, &site);
    return attachUprobe(skel_->progs.sonde_up_node_no_read_callback, false, executable, int(pid), symbol,
                        found ? &site : nullptr);
  };
  bpf_link* timers = attach(kNodeRunTimersSymbol);
  if (!timers) {
    int e = errno;
    std::string why = strerror(e);
    std::string log = takeLibbpfLog();
    if (!log.empty()) why += " (libbpf: " + log + ")";
    return why;
  }
  std::vector<bpf_link*> links{timers};
  if (bpf_link* immediates = attach(kNodeMakeCallbackSymbol)) links.push_back(immediates);
  takeLibbpfLog();
  event_loop_links_[pid] = std::move(links);
  return "";
}

std::string BpfTracer::attachTls(const std::string& path, int pid, std::string* placement) {
  if (!skel_) return "not started";
  if (tls_links_.count({path, pid})) return "";
  std::vector<bpf_link*> links;
  std::vector<std::string> sites;
  // Without a readable ELF (not x86-64), libbpf finds the symbols and the
  // probes sit at their entries, as they would anyway.
  ElfCode elf(path);
  auto& p = skel_->progs;
  auto programs = [&](TlsProgram program) -> std::pair<bpf_program*, bpf_program*> {
    switch (program) {
      case TlsProgram::ReadPlain: return {p.sonde_up_ssl_read, p.sonde_uret_ssl_read};
      case TlsProgram::ReadEx: return {p.sonde_up_ssl_read_ex, p.sonde_uret_ssl_read};
      case TlsProgram::WritePlain: return {p.sonde_up_ssl_write, p.sonde_uret_ssl_write};
      case TlsProgram::WriteEx: return {p.sonde_up_ssl_write_ex, p.sonde_uret_ssl_write};
      case TlsProgram::Handshake: return {p.sonde_up_ssl_do_handshake, p.sonde_uret_ssl_do_handshake};
      case TlsProgram::Free: return {p.sonde_up_ssl_free, nullptr};
    }
    return {nullptr, nullptr};
  };
  // The entry program and the return program at the same site (one trap
  // serves both), or neither.
  auto attach = [&](const TlsProbePlacement& at) -> bool {
    size_t before = links.size();
    auto [entry, ret] = programs(at.program);
    for (auto [prog, is_ret] : {std::pair{entry, false}, std::pair{at.with_return ? ret : nullptr, true}}) {
      if (!prog) continue;
      bpf_link* link = attachUprobe(prog, is_ret, path, pid, at.symbol, at.found ? &at.site : nullptr);
      if (!link) {
        int e = errno;
        while (links.size() > before) {
          bpf_link__destroy(links.back());
          links.pop_back();
        }
        errno = e;
        return false;
      }
      links.push_back(link);
    }
    return true;
  };
  bool previous_attached = false;
  for (const TlsProbePlacement& at : planTlsProbes(elf)) {
    if (at.covered_by_previous && previous_attached) {
      sites.push_back(at.symbol + " (through the same callee)");
      previous_attached = false;
      continue;
    }
    previous_attached = attach(at);
    if (previous_attached) {
      const UprobeSite* site = at.found ? &at.site : nullptr;
      sites.push_back(at.symbol + (site && site->via_callee         ? " (at its callee)"
                                   : site && site->past_null_check ? " (past its NULL check)"
                                   : site && !site->emulated       ? " (single-stepped)"
                                                                   : ""));
    } else if (at.required) {
      int e = errno;
      std::string why = std::string("SSL_read/SSL_write: ") + strerror(e);
      std::string log = takeLibbpfLog();
      if (!log.empty()) why += " (libbpf: " + log + ")";
      for (bpf_link* link : links) bpf_link__destroy(link);
      return why;
    }
  }
  takeLibbpfLog();
  tls_links_[{path, pid}] = std::move(links);
  skel_->bss->tls_probes_attached = 1;
  if (placement) {
    placement->clear();
    for (const std::string& s : sites) *placement += (placement->empty() ? "" : ", ") + s;
  }
  return "";
}

void BpfTracer::detachTls(int pid) {
  for (auto it = tls_links_.begin(); it != tls_links_.end();) {
    if (it->first.second != pid) {
      ++it;
      continue;
    }
    for (bpf_link* link : it->second) bpf_link__destroy(link);
    it = tls_links_.erase(it);
  }
}

void BpfTracer::detachEventLoopMarks(uint32_t pid) {
  auto it = event_loop_links_.find(pid);
  if (it == event_loop_links_.end()) return;
  for (bpf_link* link : it->second) bpf_link__destroy(link);
  event_loop_links_.erase(it);
}

void BpfTracer::setPidSelected(uint32_t pid, bool selected, bool with_descendants) {
  if (!skel_) return;
  int fd = bpf_map__fd(skel_->maps.traced_pids);
  uint8_t value = with_descendants ? SONDE_PID_SELECTED_WITH_DESCENDANTS : SONDE_PID_SELECTED;
  // The bit follows the map entry, as the kernel's select_pid and
  // deselect_pid keep them (bpf/lib/maps.bpf.h).
  uint64_t* word = pid / 64 < selected_pid_words_ ? &selected_pid_bits_[pid / 64] : nullptr;
  uint64_t bit = uint64_t(1) << (pid % 64);
  if (selected) {
    if (bpf_map_update_elem(fd, &pid, &value, BPF_ANY) == 0 && word) __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
  } else {
    if (word) __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
    bpf_map_delete_elem(fd, &pid);
  }
}

size_t BpfTracer::selectedPidBitsBytes() const {
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  return (selected_pid_words_ * sizeof(uint64_t) + page - 1) / page * page;
}

void BpfTracer::selectComm(const std::string& comm) {
  if (!skel_) return;
  char key[16] = {};
  std::memcpy(key, comm.data(), std::min<size_t>(comm.size(), 15));
  uint8_t one = 1;
  bpf_map_update_elem(bpf_map__fd(skel_->maps.traced_comms), key, &one, BPF_ANY);
}

int64_t BpfTracer::processCount(uint32_t what) const {
  if (!skel_ || !running_.load()) return -1;
  uint64_t count = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.process_counts), &what, &count) != 0) return -1;
  return int64_t(count);
}

int64_t BpfTracer::execCount() const { return processCount(SONDE_COUNT_EXECS); }

int64_t BpfTracer::processChangeCount() const { return processCount(SONDE_COUNT_PROCESS_CHANGES); }

std::vector<uint64_t> BpfTracer::kernelDrops() const {
  // After stop, the counts read last: the final counters line must not
  // report drops as gone with the maps.
  if (!skel_) return final_kernel_drops_.empty() ? std::vector<uint64_t>(SONDE_DROP__COUNT, 0) : final_kernel_drops_;
  std::vector<uint64_t> totals(SONDE_DROP__COUNT, 0);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return totals;
  std::vector<uint64_t> per_cpu(ncpu);
  int fd = bpf_map__fd(skel_->maps.drop_counters);
  for (uint32_t i = 0; i < SONDE_DROP__COUNT; i++) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) == 0)
      for (uint64_t v : per_cpu) totals[i] += v;
  }
  return totals;
}

bool BpfTracer::lookupCurrentMessage(uint32_t pid, int32_t fd, uint32_t generation, uint32_t seq, KernelMessage* out) {
  if (!skel_) return false;
  sonde_conn_key key{pid, fd};
  sonde_conn_state state;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.conn_states), &key, &state) != 0) return false;
  if (state.generation != generation || state.msg_seq != seq) return false;
  out->last_chunk_ns = state.cur_last_ns;
  out->total_bytes = state.cur_bytes;
  out->tail_bytes = std::min<uint8_t>(state.tail_bytes, SONDE_TAIL_BYTES);
  std::memcpy(out->tail, state.tail, out->tail_bytes);
  return true;
}

}  // namespace sonde
