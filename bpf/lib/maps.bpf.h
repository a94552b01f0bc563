/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What every sonde program shares: the loader's settings, the selection,
 * the connection table, the ring buffer and its drop counters. Included
 * once per BPF object, by the object's .bpf.c. */
#ifndef SONDE_LIB_MAPS_BPF_H
#define SONDE_LIB_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "../shared/events.h"

/* Set by the loader before load (libbpf-tools style rodata). */
const volatile __u32 self_pid = 0;             /* sonde itself: never traced */
const volatile __u8 trace_all_pids = 0;        /* no selection: every process */
const volatile __u32 payload_capture_bytes = 1024;
const volatile __u64 wakeup_threshold_bytes = 1 << 20;
const volatile __u8 max_unknown_starts = 3;    /* then the connection is ignored */
const volatile __u32 head_capture_bytes = SONDE_MAX_HEAD_BYTES;

/* Every value in the tables below has a size; what does not fit is counted
 * in drop_counters.
 *
 * The selected processes, and how each was selected (enum
 * sonde_pid_selection). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);  /* tgid */
	__type(value, __u8);
} traced_pids SEC(".maps");

/* The same selection as one bit per pid, which every hit of every process
 * reads first: a word of an array is one inlined load, where a hash lookup
 * hashes and walks a bucket (docs/design-notes.md, "Kernel": +111 -> +102
 * ns on a read() of an unselected process, 6.6 -> 5.3-5.8 us of BPF time
 * per Node request). A bit is set only while its pid is in traced_pids. The loader sizes it
 * to pid_max (512 KiB at the kernel's limit of 2^22 pids); userspace sets
 * and clears bits through an mmap of it and the kernel with atomics, so
 * neither loses the other's updates to a shared word. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 512); /* 64-pid words */
	__type(key, __u32);
	__type(value, __u64);
} selected_pid_bits SEC(".maps");

/* Command names (task comm, 15 chars) selected by --exe NAME: a process
 * that execs one is selected by the kernel itself, before its first
 * syscall, so that short-lived clients (curl) are not missed between two
 * scans of /proc. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[16]);
	__type(value, __u8);
} traced_comms SEC(".maps");

/* enum sonde_process_count: execs on the host since attach, for --exe
 * (a rejected process stays rejected while no process exec'd), and every
 * change to the list of processes, for --pid and --exe (a scan of /proc
 * finds nothing new while none happened). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SONDE_COUNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} process_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sonde_conn_key);
	__type(value, struct sonde_conn_state);
} conn_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_DROP__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drop_counters SEC(".maps");

/* The message-start event is too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_msg_start_event);
} msg_start_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_msg_continue_event);
} msg_continue_scratch SEC(".maps");

/* A new connection's state is built here, not on the stack: the programs
 * that create one also call emit_msg_start, and without a private stack
 * per program (uprobes on some kernel builds) their frames count together
 * against the 512-byte limit. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_conn_state);
} conn_state_scratch SEC(".maps");

/* The connection each thread of a selected process last read from
 * (docs/design-notes.md, "Linking on event loops"): egress events carry it as their
 * cause. A plain hash, as cheap per lookup as a map gets; sched_process_exit
 * deletes a thread's entry. */
struct sonde_thread_read {
	__s32 fd;
	__u32 generation;
	/* The socket this thread last read, whatever sonde made of it (TLS
	 * ciphertext it ignores included), -1 after anything else: where the
	 * plaintext of an SSL_read over a memory BIO (Node) came from. */
	__s32 socket_fd;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct sonde_thread_read);
} thread_last_read SEC(".maps");

__u64 next_generation = 1;

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drop_counters, &reason);
	if (n)
		*n += 1;
}

/* One more of `what` (enum sonde_process_count). Atomic: forks and exits
 * on other CPUs count into the same word. */
static __always_inline void count_process(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&process_counts, &what);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The word of selected_pid_bits that holds tgid's bit. */
static __always_inline __u64 *selected_pid_word(__u32 tgid)
{
	__u32 word = tgid / 64;
	return bpf_map_lookup_elem(&selected_pid_bits, &word);
}

static __always_inline bool is_selected(__u32 tgid)
{
	if (tgid == self_pid)
		return false;
	if (trace_all_pids)
		return true;
	__u64 *bits = selected_pid_word(tgid);
	return bits && ((*bits >> (tgid % 64)) & 1);
}

/* Selects a process as `how` (enum sonde_pid_selection); with
 * BPF_NOEXIST, only if it is not selected yet. */
static __always_inline void select_pid(__u32 tgid, __u8 how, __u64 update_flags)
{
	long err = bpf_map_update_elem(&traced_pids, &tgid, &how, update_flags);
	if (err && err != -17 /* EEXIST: selected already */)
		return;
	__u64 *bits = selected_pid_word(tgid);
	if (bits)
		__sync_fetch_and_or(bits, 1ULL << (tgid % 64));
}

static __always_inline void deselect_pid(__u32 tgid)
{
	__u64 *bits = selected_pid_word(tgid);
	if (bits)
		__sync_fetch_and_and(bits, ~(1ULL << (tgid % 64)));
	bpf_map_delete_elem(&traced_pids, &tgid);
}

/* When a program last asked for the reader to be woken (bpf_ktime_get_ns). */
__u64 last_forced_wakeup_ns = 0;

/* Never wake the reader per event: it polls on a timer, and is woken early
 * only when the buffer is filling up (DESIGN.md: per-event wake-ups halve a
 * service's throughput). Even then, once per SONDE_FORCED_WAKEUP_SPACING_NS
 * at most: a forced wake-up is an interrupt on the writer's CPU, and every
 * event written until the woken reader has drained below the threshold
 * (a millisecond or more for a reader at nice 10 on a busy machine) would
 * otherwise ask for one more. One is enough: a wake-up the reader is not
 * waiting for stays pending on its epoll fd. The spacing keeps asking while
 * the buffer stays above the threshold, so no wake-up lost to a race between
 * CPUs can leave it filling up. */
#define SONDE_FORCED_WAKEUP_SPACING_NS 250000ULL
static __always_inline __u64 ringbuf_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) <= wakeup_threshold_bytes)
		return BPF_RB_NO_WAKEUP;
	__u64 now_ns = bpf_ktime_get_ns();
	if (now_ns - last_forced_wakeup_ns < SONDE_FORCED_WAKEUP_SPACING_NS)
		return BPF_RB_NO_WAKEUP;
	last_forced_wakeup_ns = now_ns;
	return BPF_RB_FORCE_WAKEUP;
}

/* An event header from what is known of its connection; direction and
 * msg_class are left 0 for the event kinds that carry them to set. */
static __always_inline void fill_header_of(struct sonde_event_header *h, __u8 kind, __u64 pid_tgid, int fd,
					   __u8 role_hint, __u32 generation, __u32 msg_seq, __u8 protocol,
					   __u8 source, __u64 now_ns)
{
	h->kind = kind;
	h->direction = 0;
	h->msg_class = 0;
	h->role_hint = role_hint;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->fd = fd;
	h->generation = generation;
	h->msg_seq = msg_seq;
	h->timestamp_ns = now_ns;
	h->source = source;
	h->protocol = protocol;
	__builtin_memset(h->_pad, 0, sizeof(h->_pad));
	h->cause_fd = SONDE_NO_CAUSE;
	h->cause_generation = 0;
	h->_pad2 = 0;
}

/* A read of `fd` by this thread succeeded: what it runs next serves that
 * connection (SONDE_NO_CAUSE: a connection nobody follows). Written only
 * when it changes, since most reads come from the connection read before. */
static __always_inline void note_thread_read(__u64 pid_tgid, int fd, __u32 generation, int socket_fd)
{
	struct sonde_thread_read *t = bpf_map_lookup_elem(&thread_last_read, &pid_tgid);
	if (t) {
		if (t->fd != fd || t->generation != generation || t->socket_fd != socket_fd) {
			t->fd = fd;
			t->generation = generation;
			t->socket_fd = socket_fd;
		}
		return;
	}
	struct sonde_thread_read fresh = { .fd = fd, .generation = generation, .socket_fd = socket_fd };
	if (bpf_map_update_elem(&thread_last_read, &pid_tgid, &fresh, BPF_NOEXIST))
		count_drop(SONDE_DROP_THREAD_TABLE_FULL);
}

static __always_inline void set_cause(struct sonde_event_header *h, __u64 pid_tgid)
{
	struct sonde_thread_read *t = bpf_map_lookup_elem(&thread_last_read, &pid_tgid);
	if (!t)
		return;
	h->cause_fd = t->fd;
	h->cause_generation = t->generation;
}

static __always_inline __u8 conn_source(const struct sonde_conn_state *c)
{
	return c && (c->flags & SONDE_CONN_TLS) ? SONDE_SOURCE_TLS : SONDE_SOURCE_SOCKET;
}

static __always_inline void fill_header(struct sonde_event_header *h, __u8 kind, __u64 pid_tgid,
					int fd, const struct sonde_conn_state *c, __u64 now_ns)
{
	fill_header_of(h, kind, pid_tgid, fd, c ? c->role_hint : 0, c ? c->generation : 0, c ? c->msg_seq : 0,
		       c ? c->protocol : SONDE_PROTO_UNKNOWN, conn_source(c), now_ns);
}

#endif
