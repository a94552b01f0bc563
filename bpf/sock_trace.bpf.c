// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Sees HTTP message boundaries on the TCP sockets of selected processes,
 * from syscall tracepoints only (this kernel has no kprobes or fentry).
 *
 * Per connection the kernel keeps the direction of the message in flight.
 * The first chunk after the direction flips (or a chunk that itself starts
 * like an HTTP message: pipelining) starts a new message and is the only one
 * whose bytes are copied; later chunks only add to the byte count and the
 * last-chunk time, which travel with the next boundary event or the close.
 *
 * Writes are handled at syscall entry: the bytes are already in the user
 * buffer, and reporting a client's request before it reaches the peer keeps
 * the ring buffer ordered client-first, which the correlator relies on to
 * hand the client's trace context to the server span. Reads are handled at
 * exit alone, with their arguments taken from the task's saved registers:
 * a read that was already blocked when sonde attached (a thread-per-
 * connection server idle in recv) is seen too, and every read of every
 * process pays one tracepoint hit instead of two.
 *
 * Three things go past the first chunk of a message: a chunk too short to
 * classify is held back and joined to the next one; a request head that
 * does not end in its first capture is followed in continuation events up
 * to SONDE_MAX_HEAD_BYTES; and each chunk of a response leaves its last
 * bytes in the connection's state, where userspace finds the end of a
 * chunked body.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "shared/events.h"
#include "lib/sock.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load (libbpf-tools style rodata). */
const volatile __u32 self_pid = 0;             /* sonde itself: never traced */
const volatile __u8 trace_all_pids = 0;        /* no selection: every process */
const volatile __u32 payload_capture_bytes = 1024;
const volatile __u64 wakeup_threshold_bytes = 1 << 20;
const volatile __u8 max_unknown_starts = 3;    /* then the connection is ignored */
const volatile __u32 head_capture_bytes = SONDE_MAX_HEAD_BYTES;

/* Every value in the tables below has a size; what does not fit is counted
 * in drop_counters. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);  /* tgid */
	__type(value, __u8);
} traced_pids SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sonde_conn_key);
	__type(value, struct sonde_conn_state);
} conn_states SEC(".maps");

enum io_kind { IO_BUF = 0, IO_IOV = 1, IO_MSG = 2, IO_SENDFILE = 3, IO_ACCEPT = 4, IO_CONNECT = 5 };

struct io_args {
	__u64 ptr;   /* buffer, iovec array or msghdr */
	__u64 count; /* buffer length or iovec count */
	__s32 fd;
	__u8 kind;   /* enum io_kind */
	__u8 direction;
	__u8 _pad[2];
};

/* Syscall arguments from entry to exit, per thread. A thread killed inside
 * a syscall never reaches the exit that would delete its entry, so
 * sched_process_exit deletes it; a plain (preallocated) hash is cheaper per
 * update than an LRU on this hot path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct io_args);
} active_io_args SEC(".maps");

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

__u64 next_generation = 1;

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drop_counters, &reason);
	if (n)
		*n += 1;
}

static __always_inline bool is_selected(__u32 tgid)
{
	if (tgid == self_pid)
		return false;
	if (trace_all_pids)
		return true;
	return bpf_map_lookup_elem(&traced_pids, &tgid) != NULL;
}

/* Never wake the reader per event: it polls on a timer, and is woken early
 * only when the buffer is filling up (DESIGN.md: per-event wake-ups halve a
 * service's throughput). */
static __always_inline __u64 ringbuf_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wakeup_threshold_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_header(struct sonde_event_header *h, __u8 kind, __u64 pid_tgid,
					int fd, const struct sonde_conn_state *c, __u64 now_ns)
{
	h->kind = kind;
	h->direction = 0;
	h->msg_class = 0;
	h->role_hint = c ? c->role_hint : 0;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->fd = fd;
	h->generation = c ? c->generation : 0;
	h->msg_seq = c ? c->msg_seq : 0;
	h->timestamp_ns = now_ns;
}

static __always_inline bool is_method(const __u8 *b)
{
	switch (b[0]) {
	case 'G': return b[1] == 'E' && b[2] == 'T' && b[3] == ' ';
	case 'P':
		return (b[1] == 'O' && b[2] == 'S' && b[3] == 'T' && b[4] == ' ') ||
		       (b[1] == 'U' && b[2] == 'T' && b[3] == ' ') ||
		       (b[1] == 'A' && b[2] == 'T' && b[3] == 'C' && b[4] == 'H' && b[5] == ' ');
	case 'H': return b[1] == 'E' && b[2] == 'A' && b[3] == 'D' && b[4] == ' ';
	case 'D': return b[1] == 'E' && b[2] == 'L' && b[3] == 'E' && b[4] == 'T' && b[5] == 'E' && b[6] == ' ';
	case 'O': return b[1] == 'P' && b[2] == 'T' && b[3] == 'I' && b[4] == 'O' && b[5] == 'N' && b[6] == 'S';
	case 'C': return b[1] == 'O' && b[2] == 'N' && b[3] == 'N' && b[4] == 'E' && b[5] == 'C' && b[6] == 'T';
	case 'T': return b[1] == 'R' && b[2] == 'A' && b[3] == 'C' && b[4] == 'E' && b[5] == ' ';
	}
	return false;
}

static __always_inline __u8 classify(const __u8 *b, __u32 len)
{
	if (len < 8)
		return SONDE_CLASS_UNKNOWN;
	if (b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' && b[4] == '/' && b[5] == '1' && b[6] == '.')
		return SONDE_CLASS_HTTP1_RESPONSE;
	if (b[0] == 'P' && b[1] == 'R' && b[2] == 'I' && b[3] == ' ' && b[4] == '*' && b[5] == ' ' && b[6] == 'H')
		return SONDE_CLASS_HTTP2_PREFACE;
	if (is_method(b))
		return SONDE_CLASS_HTTP1_REQUEST;
	return SONDE_CLASS_UNKNOWN;
}

/* First user buffer of the syscall: the plain buffer, or the first non-empty
 * iovec among the first few (Node's writev may lead with an empty one). */
static __always_inline int first_chunk(const struct io_args *a, __u64 *base, __u64 *len)
{
	struct iovec iov = {};
	__u64 iov_ptr = a->ptr, iov_count = a->count;

	if (a->kind == IO_BUF) {
		*base = a->ptr;
		*len = a->count;
		return 0;
	}
	if (a->kind == IO_MSG) {
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->ptr))
			return -1;
		iov_ptr = (__u64)msg.msg_iov;
		iov_count = msg.msg_iovlen;
	}
	for (int i = 0; i < 4; i++) {
		if (i >= iov_count)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_ptr + i * sizeof(iov))))
			return -1;
		if (iov.iov_len > 0) {
			*base = (__u64)iov.iov_base;
			*len = iov.iov_len;
			return 0;
		}
	}
	return -1;
}

/* The first user buffer of a syscall, resolved once per chunk and shared by
 * the peek and the payload copy (for an iovec that is a user-memory read). */
struct user_chunk {
	__u64 base;
	__u64 len; /* 0: none could be read */
};

static __always_inline struct user_chunk resolve_chunk(const struct io_args *a)
{
	struct user_chunk uc = {};
	if (first_chunk(a, &uc.base, &uc.len))
		uc.len = 0;
	return uc;
}

/* Classifies the first 8 bytes of a message: the held-back short chunk
 * (prefix_bytes of c->short_prefix, 0..7), then the chunk's own bytes. */
static __always_inline __u8 peek_class(const struct sonde_conn_state *c, __u32 prefix_bytes,
				       const struct user_chunk *uc, __u64 available)
{
	__u64 own = 0, prefix = 0;
	__u32 p = prefix_bytes & 7;
	if (p + available < 8 || p + uc->len < 8)
		return SONDE_CLASS_UNKNOWN;
	if (bpf_probe_read_user(&own, sizeof(own), (void *)uc->base)) {
		/* fewer than 8 readable bytes: only the part after the prefix */
		if (p == 0 || bpf_probe_read_user(&own, 8 - p, (void *)uc->base))
			return SONDE_CLASS_UNKNOWN;
	}
	if (p) {
		__builtin_memcpy(&prefix, c->short_prefix, sizeof(prefix));
		/* little-endian: the prefix's bytes come first in memory */
		prefix &= (1ULL << (8 * p)) - 1;
		own = prefix | (own << (8 * p));
	}
	__u8 head[8];
	__builtin_memcpy(head, &own, sizeof(head));
	return classify(head, 8);
}

static __always_inline bool ends_head(const __u8 *b, __u32 n)
{
	if (n < 4 || n > SONDE_MAX_PAYLOAD_BYTES)
		return false;
	__u32 i = n - 4;
	/* keep the compiler from re-deriving the index from n, which the
	 * verifier cannot bound */
	asm volatile("" : "+r"(i));
	if (i > SONDE_MAX_PAYLOAD_BYTES - 4)
		return false;
	const __u8 *q = b + i;
	return q[0] == '\r' && q[1] == '\n' && q[2] == '\r' && q[3] == '\n';
}

struct head_end_scan {
	const __u8 *bytes;
	__u32 n;
	bool found;
};

/* One 8-byte word per step: only a word holding a '\n' is looked at byte
 * by byte (header lines are tens of bytes, so most words are skipped). */
static long head_end_step(__u64 word, void *ctx)
{
	struct head_end_scan *scan = ctx;
	__u64 start = word * 8;
	if (start >= scan->n || start > SONDE_MAX_PAYLOAD_BYTES - 8)
		return 1;
	__u32 base = start & (SONDE_MAX_PAYLOAD_BYTES - 8); /* a bound the verifier sees */
	__u64 w;
	__builtin_memcpy(&w, scan->bytes + base, sizeof(w));
	__u64 x = w ^ 0x0a0a0a0a0a0a0a0aULL;
	if (!((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL))
		return 0;
	/* win[k] is byte base - 3 + k: the four bytes ending at base + j are
	 * win[j .. j + 3]. */
	__u8 win[11] = {};
	if (base == 0)
		__builtin_memcpy(win + 3, &w, sizeof(w));
	else if (bpf_probe_read_kernel(win, sizeof(win), scan->bytes + base - 3))
		return 1;
	for (int j = 0; j < 8; j++) {
		if (base + j >= scan->n)
			break;
		if (win[j] == '\r' && win[j + 1] == '\n' && win[j + 2] == '\r' && win[j + 3] == '\n') {
			scan->found = true;
			return 1;
		}
	}
	return 0;
}

/* Whether the first n captured bytes hold the blank line that ends a head.
 * Only run for a request whose first chunk is longer than its capture, to
 * decide whether the rest of that chunk must be followed. bpf_loop (5.17)
 * keeps the verifier from walking every iteration. */
static __always_inline bool contains_head_end(const __u8 *b, __u32 n)
{
	struct head_end_scan scan = { .bytes = b, .n = n };
	bpf_loop((n + 7) / 8, head_end_step, &scan, 0);
	return scan.found;
}

/* Following a request head past its first capture: where the bytes are,
 * how many more may be sent, and what the continuation events say. */
struct head_follow {
	__u64 base;        /* the user buffer */
	__u64 len;
	__u64 offset;      /* next byte of it to send */
	__u64 chunk_bytes;
	__u64 pid_tgid;
	__u64 now_ns;
	__u32 budget;      /* head bytes that may still be sent */
	__s32 fd;
	__u32 generation;
	__u32 msg_seq;
	__u8 direction;
	__u8 role_hint;
	__u8 msg_class;
	bool ended;        /* a piece ended with the blank line */
	bool stuck;        /* nothing could be sent */
};

static __always_inline void head_follow_init(struct head_follow *f, const struct sonde_conn_state *c,
					     const struct io_args *a, const struct user_chunk *uc,
					     __u64 pid_tgid, __u64 now_ns, __u64 chunk_bytes,
					     __u64 offset, __u32 budget)
{
	f->base = uc->base;
	f->len = uc->len;
	f->offset = offset;
	f->chunk_bytes = chunk_bytes;
	f->pid_tgid = pid_tgid;
	f->now_ns = now_ns;
	f->budget = budget;
	f->fd = a->fd;
	f->generation = c->generation;
	f->msg_seq = c->msg_seq;
	f->direction = a->direction;
	f->role_hint = c->role_hint;
	f->msg_class = c->cur_class;
	f->ended = false;
	f->stuck = false;
}

/* Sends the next piece (at most SONDE_MAX_PAYLOAD_BYTES) as a continuation
 * event. Global, so that the verifier checks it once rather than in every
 * step of the bpf_loop below and on every path into it. */
__noinline int head_follow_send(struct head_follow *f)
{
	__u32 zero = 0;
	if (!f)
		return 0;
	struct sonde_msg_continue_event *ev = bpf_map_lookup_elem(&msg_continue_scratch, &zero);
	__u64 n = f->offset < f->len ? f->len - f->offset : 0;
	if (n > f->budget)
		n = f->budget;
	if (n > SONDE_MAX_PAYLOAD_BYTES)
		n = SONDE_MAX_PAYLOAD_BYTES;
	if (!ev || n == 0 || bpf_probe_read_user(ev->payload, n, (void *)(f->base + f->offset))) {
		f->stuck = true;
		return 0;
	}
	ev->hdr.kind = SONDE_EV_MSG_CONTINUE;
	ev->hdr.direction = f->direction;
	ev->hdr.msg_class = f->msg_class;
	ev->hdr.role_hint = f->role_hint;
	ev->hdr.pid = f->pid_tgid >> 32;
	ev->hdr.tid = (__u32)f->pid_tgid;
	ev->hdr.fd = f->fd;
	ev->hdr.generation = f->generation;
	ev->hdr.msg_seq = f->msg_seq;
	ev->hdr.timestamp_ns = f->now_ns;
	ev->chunk_bytes = f->chunk_bytes > 0xffffffff ? 0xffffffff : f->chunk_bytes;
	ev->payload_bytes = n;
	f->ended = ends_head(ev->payload, n);
	f->offset += n;
	f->budget -= n;
	if (bpf_ringbuf_output(&events, ev, SONDE_MSG_CONTINUE_HEADER_BYTES + n, ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);
	return 0;
}

/* The next chunk of a request head that did not end in its first ones
 * (global, like emit_msg_start, so it is verified once). */
__noinline int follow_head(struct sonde_conn_state *c, struct head_follow *f)
{
	if (!c || !f)
		return 0;
	head_follow_send(f);
	c->head_left_bytes = (f->ended || f->stuck || f->offset < f->chunk_bytes) ? 0 : f->budget;
	return 0;
}

/* One piece per step, through bpf_loop: an unrolled loop of sends would be
 * verified once per path through it, in every program that inlines it. */
static long head_follow_step(__u64 i, void *ctx)
{
	struct head_follow *f = ctx;
	if (f->ended || f->stuck || f->budget == 0 || f->offset >= f->len)
		return 1;
	head_follow_send(f);
	return 0;
}

/* What a message start event is made of, for emit_msg_start. */
struct msg_start {
	struct io_args a;
	struct user_chunk uc;
	struct sonde_prev_message prev;
	__u64 pid_tgid;
	__u64 start_ns;
	__u64 chunk_bytes; /* the held-back prefix included */
	__u32 prefix_bytes;
	__u8 msg_class;
	__u8 _pad[3];
};

/* A global (not inlined) function: the verifier checks it once, on its
 * own, instead of once per path through every program that calls it;
 * that keeps sonde's load time near a tenth of a second. */
__noinline int emit_msg_start(struct sonde_conn_state *c, const struct msg_start *m)
{
	__u32 zero = 0;
	if (!c || !m)
		return 0;
	struct sonde_msg_start_event *ev = bpf_map_lookup_elem(&msg_start_scratch, &zero);
	if (!ev)
		return 0;
	const struct io_args *a = &m->a;
	const struct user_chunk *uc = &m->uc;
	__u64 pid_tgid = m->pid_tgid, start_ns = m->start_ns, chunk_bytes = m->chunk_bytes;
	__u32 prefix_bytes = m->prefix_bytes & 7;
	__u8 msg_class = m->msg_class;
	fill_header(&ev->hdr, SONDE_EV_MSG_START, pid_tgid, a->fd, c, start_ns);
	ev->hdr.direction = a->direction;
	ev->hdr.msg_class = msg_class;
	ev->tuple = c->tuple;
	ev->prev = m->prev;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	ev->chunk_bytes = chunk_bytes > 0xffffffff ? 0xffffffff : chunk_bytes;

	__u32 cap = payload_capture_bytes;
	if (cap > SONDE_MAX_PAYLOAD_BYTES - 8)
		cap = SONDE_MAX_PAYLOAD_BYTES - 8;
	/* All 8 bytes, unconditionally: the chunk's own bytes overwrite those
	 * past the prefix, and a copy per prefix length would multiply the
	 * paths the verifier walks. */
	__builtin_memcpy(ev->payload, c->short_prefix, sizeof(c->short_prefix));
	__u32 off = prefix_bytes & 7;
	/* Headers are what the parsers need, and they come first; a body in a
	 * later iovec is not worth a second copy loop. */
	__u64 own = chunk_bytes - prefix_bytes;
	__u32 n = uc->len < cap ? uc->len : cap;
	if (own < n)
		n = own;
	__u32 copied = off;
	if (n > 0 && n <= SONDE_MAX_PAYLOAD_BYTES - 8 && !bpf_probe_read_user(ev->payload + off, n, (void *)uc->base))
		copied = off + n;
	ev->payload_bytes = copied;

	__u64 size = SONDE_MSG_START_HEADER_BYTES + copied;
	if (size > sizeof(*ev))
		return 0;
	if (bpf_ringbuf_output(&events, ev, size, ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);

	if (msg_class != SONDE_CLASS_HTTP1_REQUEST || ends_head(ev->payload, copied))
		return 0;
	/* A request head that did not end in the capture: follow it. */
	__u32 budget = head_capture_bytes > copied ? head_capture_bytes - copied : 0;
	__u64 own_copied = copied - off;
	if (own_copied < own) {
		/* The chunk goes on past the capture: its rest is sent only when
		 * the head does not end inside what was captured (a large body
		 * after a short head costs one scan, not a copy). */
		if (contains_head_end(ev->payload, copied))
			return 0;
		struct head_follow f;
		head_follow_init(&f, c, a, uc, pid_tgid, start_ns, chunk_bytes, own_copied, budget);
		bpf_loop(SONDE_MAX_HEAD_BYTES / SONDE_MAX_PAYLOAD_BYTES, head_follow_step, &f, 0);
		if (f.ended || f.offset < own)
			return 0;
		budget = f.budget;
	}
	c->head_left_bytes = budget;
	return 0;
}

static __always_inline struct sonde_conn_state *
new_conn_state(struct sonde_conn_key *key, struct sock *sk, __u8 role_hint)
{
	struct sonde_conn_state fresh = {};
	fresh.sock_addr = (__u64)sk;
	fresh.role_hint = role_hint;
	fresh.generation = __sync_fetch_and_add(&next_generation, 1);
	if (sk && sonde_sock_is_tcp(sk))
		sonde_read_tuple(sk, &fresh.tuple);
	else
		fresh.flags = SONDE_CONN_IGNORED;
	if (bpf_map_update_elem(&conn_states, key, &fresh, BPF_ANY)) {
		count_drop(SONDE_DROP_CONN_TABLE_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&conn_states, key);
}

/* Keeps the last bytes of a response chunk in the connection's state, at
 * syscall exit when `moved` bytes went through: from the buffer that holds
 * the chunk's last byte (the iovec walk is bounded; Node's writev has 1-3). */
__noinline int record_tail(struct sonde_conn_state *c, const struct io_args *a, __u64 moved)
{
	if (!c || !a)
		return 0;
	__u64 end = 0;
	if (a->kind == IO_BUF) {
		end = a->ptr + moved;
	} else if (a->kind == IO_IOV || a->kind == IO_MSG) {
		__u64 iov_ptr = a->ptr, iov_count = a->count, seen = 0;
		if (a->kind == IO_MSG) {
			struct user_msghdr msg = {};
			if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->ptr))
				goto none;
			iov_ptr = (__u64)msg.msg_iov;
			iov_count = msg.msg_iovlen;
		}
		for (int i = 0; i < 8; i++) {
			struct iovec iov = {};
			if (i >= iov_count)
				break;
			if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_ptr + i * sizeof(iov))))
				goto none;
			if (seen + iov.iov_len >= moved) {
				end = (__u64)iov.iov_base + (moved - seen);
				moved = moved - seen;
				break;
			}
			seen += iov.iov_len;
		}
	}
	if (!end)
		goto none;
	__u32 n = moved < SONDE_TAIL_BYTES ? moved : SONDE_TAIL_BYTES;
	if (n == 0 || bpf_probe_read_user(c->tail, n, (void *)(end - n)))
		goto none;
	c->tail_bytes = n;
	return 0;
none:
	c->tail_bytes = 0;
	return 0;
}

/* One chunk of data moved on fd: decide whether it starts a message, emit
 * the boundary event if so, and account its bytes. `resolved` is the
 * syscall's first user buffer when the caller already had to read it, else
 * NULL: it is then read here, only for connections that are followed. */
static __always_inline void on_chunk(const struct io_args *a, const struct user_chunk *resolved,
				     __u64 pid_tgid, __u64 chunk_bytes, bool account_bytes)
{
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = a->fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	__u64 now_ns = bpf_ktime_get_ns();

	if (!c) {
		c = new_conn_state(&key, sonde_sock_from_fd(a->fd), SONDE_ROLE_UNKNOWN);
		if (!c)
			return;
	}
	if (c->flags & SONDE_CONN_IGNORED)
		return;

	struct user_chunk uc = resolved ? *resolved : resolve_chunk(a);
	__u32 prefix_bytes = 0;
	__u64 start_ns = now_ns;
	if (c->short_bytes) {
		/* The held-back chunk starts this message only if this one
		 * follows it in the same direction. */
		if (c->short_direction == a->direction) {
			prefix_bytes = c->short_bytes & 7;
			start_ns = c->short_start_ns;
		}
		c->short_bytes = 0;
	}
	bool flipped = c->cur_direction != a->direction || prefix_bytes;
	__u64 message_bytes = prefix_bytes + chunk_bytes;
	if (flipped && message_bytes < 8) {
		/* Too short to classify ("GE"): hold it back for the next chunk. */
		__u32 n = chunk_bytes & 7;
		if (uc.len < n || bpf_probe_read_user(c->short_prefix + prefix_bytes, n & 7, (void *)uc.base))
			return;
		c->short_bytes = message_bytes;
		c->short_direction = a->direction;
		c->short_start_ns = start_ns;
		return;
	}
	/* Peek at every chunk, not only at flips, so that pipelined messages
	 * written one per syscall are told apart. */
	__u8 msg_class = peek_class(c, prefix_bytes, &uc, chunk_bytes);
	if (flipped || msg_class != SONDE_CLASS_UNKNOWN) {
		struct sonde_prev_message prev = {
			.last_chunk_ns = c->cur_last_ns,
			.total_bytes = c->cur_bytes,
			.seq = c->msg_seq,
			.direction = c->cur_direction,
		};
		c->msg_seq += 1;
		c->cur_direction = a->direction;
		c->cur_start_ns = start_ns;
		c->cur_last_ns = now_ns;
		c->cur_bytes = prefix_bytes;
		c->cur_class = msg_class;
		c->tail_bytes = 0;
		c->head_left_bytes = 0;
		if (msg_class != SONDE_CLASS_UNKNOWN) {
			c->flags |= SONDE_CONN_SYNCED;
		} else if (!(c->flags & SONDE_CONN_SYNCED)) {
			if (++c->unknown_starts >= max_unknown_starts) {
				c->flags |= SONDE_CONN_IGNORED;
				count_drop(SONDE_DROP_NOT_SYNCED);
			}
		}
		if (c->flags & SONDE_CONN_SYNCED) {
			struct msg_start m = {
				.a = *a,
				.uc = uc,
				.prev = prev,
				.pid_tgid = pid_tgid,
				.start_ns = start_ns,
				.chunk_bytes = message_bytes,
				.prefix_bytes = prefix_bytes,
				.msg_class = msg_class,
			};
			emit_msg_start(c, &m);
		}
	} else if (c->head_left_bytes) {
		struct head_follow f;
		head_follow_init(&f, c, a, &uc, pid_tgid, now_ns, chunk_bytes, 0, c->head_left_bytes);
		follow_head(c, &f);
	}
	if (account_bytes) {
		c->cur_bytes += chunk_bytes;
		c->cur_last_ns = now_ns;
		if (c->cur_class == SONDE_CLASS_HTTP1_RESPONSE)
			record_tail(c, a, chunk_bytes);
	}
}

static __always_inline void stash_args(__u64 ptr, __u64 count, int fd, __u8 kind, __u8 direction)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	struct io_args a = { .ptr = ptr, .count = count, .fd = fd, .kind = kind, .direction = direction };
	if (bpf_map_update_elem(&active_io_args, &pid_tgid, &a, BPF_ANY))
		count_drop(SONDE_DROP_ARGS_TABLE_FULL);
}

/* Egress at entry: the message start (and its payload) is reported before
 * the bytes can reach a peer; the byte count is added at exit. */
static __always_inline void on_write_enter(__u64 ptr, __u64 count, int fd, __u8 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	struct io_args a = { .ptr = ptr, .count = count, .fd = fd, .kind = kind, .direction = SONDE_DIR_EGRESS };
	struct user_chunk uc = resolve_chunk(&a);
	if (uc.len == 0)
		return;
	on_chunk(&a, &uc, pid_tgid, uc.len, false);
	if (bpf_map_update_elem(&active_io_args, &pid_tgid, &a, BPF_ANY))
		count_drop(SONDE_DROP_ARGS_TABLE_FULL);
}

static __always_inline void on_io_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_args *a = bpf_map_lookup_elem(&active_io_args, &pid_tgid);
	if (!a || a->kind >= IO_ACCEPT)
		return;
	struct io_args args = *a;
	bpf_map_delete_elem(&active_io_args, &pid_tgid);
	if (ret <= 0)
		return;

	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = args.fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	if (!c || (c->flags & SONDE_CONN_IGNORED) || c->cur_direction != SONDE_DIR_EGRESS)
		return;
	c->cur_bytes += ret;
	c->cur_last_ns = bpf_ktime_get_ns();
	if (c->cur_class == SONDE_CLASS_HTTP1_RESPONSE)
		record_tail(c, &args, ret);
}

/* Reads at exit only. The arguments are read from the registers the task
 * saved on syscall entry, which the syscall leaves as they were (x86-64 and
 * arm64 return in ax/x0 only; arm64 keeps the first argument in orig_x0). */
static __always_inline void on_read_exit(long ret, __u8 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ret <= 0 || !is_selected(pid_tgid >> 32))
		return;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct io_args a = {
		.fd = PT_REGS_PARM1_CORE_SYSCALL(regs),
		.ptr = PT_REGS_PARM2_CORE_SYSCALL(regs),
		.count = kind == IO_MSG ? 0 : PT_REGS_PARM3_CORE_SYSCALL(regs),
		.kind = kind,
		.direction = SONDE_DIR_INGRESS,
	};
	on_chunk(&a, NULL, pid_tgid, ret, true);
}

/* accept()/connect() tell which end the process is; connections first seen
 * later get SONDE_ROLE_UNKNOWN and userspace infers the role. */
static __always_inline void on_conn_exit(long ret, __u8 role)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_args *a = bpf_map_lookup_elem(&active_io_args, &pid_tgid);
	if (!a)
		return;
	int fd = role == SONDE_ROLE_SERVER ? ret : a->fd;
	bpf_map_delete_elem(&active_io_args, &pid_tgid);
	/* -EINPROGRESS: a non-blocking connect already has its local port */
	if (role == SONDE_ROLE_SERVER ? ret < 0 : (ret != 0 && ret != -115))
		return;

	struct sock *sk = sonde_sock_from_fd(fd);
	if (!sk || !sonde_sock_is_tcp(sk))
		return;
	__u32 tgid = pid_tgid >> 32;
	if (tgid == self_pid) {
		struct sonde_self_connect_event ev = {};
		fill_header(&ev.hdr, SONDE_EV_SELF_CONNECT, pid_tgid, fd, NULL, bpf_ktime_get_ns());
		sonde_read_tuple(sk, &ev.tuple);
		if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags()))
			count_drop(SONDE_DROP_RINGBUF_FULL);
		return;
	}
	struct sonde_conn_key key = { .pid = tgid, .fd = fd };
	new_conn_state(&key, sk, role);
}

SEC("tracepoint/syscalls/sys_enter_write")
int sonde_tp_sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	on_write_enter(ctx->args[1], ctx->args[2], ctx->args[0], IO_BUF);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sonde_tp_sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	on_write_enter(ctx->args[1], ctx->args[2], ctx->args[0], IO_BUF);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int sonde_tp_sys_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	on_write_enter(ctx->args[1], ctx->args[2], ctx->args[0], IO_IOV);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sonde_tp_sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	on_write_enter(ctx->args[1], 0, ctx->args[0], IO_MSG);
	return 0;
}

/* nginx sends static bodies with sendfile after writing the head with
 * writev: only the byte count and end time matter. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sonde_tp_sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(0, ctx->args[3], ctx->args[0], IO_SENDFILE, SONDE_DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int sonde_tp_sys_exit_read(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_BUF); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sonde_tp_sys_exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_BUF); return 0; }
SEC("tracepoint/syscalls/sys_exit_readv")
int sonde_tp_sys_exit_readv(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_IOV); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sonde_tp_sys_exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_MSG); return 0; }
SEC("tracepoint/syscalls/sys_exit_write")
int sonde_tp_sys_exit_write(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendto")
int sonde_tp_sys_exit_sendto(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_writev")
int sonde_tp_sys_exit_writev(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sonde_tp_sys_exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sonde_tp_sys_exit_sendfile64(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }

SEC("tracepoint/syscalls/sys_enter_accept4")
int sonde_tp_sys_enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(0, 0, ctx->args[0], IO_ACCEPT, SONDE_DIR_NONE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int sonde_tp_sys_enter_accept(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(0, 0, ctx->args[0], IO_ACCEPT, SONDE_DIR_NONE);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sonde_tp_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx) { on_conn_exit(ctx->ret, SONDE_ROLE_SERVER); return 0; }
SEC("tracepoint/syscalls/sys_exit_accept")
int sonde_tp_sys_exit_accept(struct trace_event_raw_sys_exit *ctx) { on_conn_exit(ctx->ret, SONDE_ROLE_SERVER); return 0; }

/* sonde's own connections are recorded too, so that the exporter's traffic
 * to a local backend is never traced as somebody else's request. */
static __always_inline void on_connect_enter(int fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid != self_pid && !is_selected(tgid))
		return;
	struct io_args a = { .fd = fd, .kind = IO_CONNECT };
	if (bpf_map_update_elem(&active_io_args, &pid_tgid, &a, BPF_ANY))
		count_drop(SONDE_DROP_ARGS_TABLE_FULL);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int sonde_tp_sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	on_connect_enter(ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sonde_tp_sys_exit_connect(struct trace_event_raw_sys_exit *ctx) { on_conn_exit(ctx->ret, SONDE_ROLE_CLIENT); return 0; }

static __always_inline void on_close_enter(int fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	if (!c)
		return;
	if ((c->flags & SONDE_CONN_SYNCED) && !(c->flags & SONDE_CONN_IGNORED)) {
		struct sonde_close_event ev = {};
		fill_header(&ev.hdr, SONDE_EV_CLOSE, pid_tgid, key.fd, c, bpf_ktime_get_ns());
		ev.tuple = c->tuple;
		ev.last.last_chunk_ns = c->cur_last_ns;
		ev.last.total_bytes = c->cur_bytes;
		ev.last.seq = c->msg_seq;
		ev.last.direction = c->cur_direction;
		if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags()))
			count_drop(SONDE_DROP_RINGBUF_FULL);
	}
	bpf_map_delete_elem(&conn_states, &key);
}

SEC("tracepoint/syscalls/sys_enter_close")
int sonde_tp_sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	on_close_enter(ctx->args[0]);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sonde_tp_sched_process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	bpf_map_delete_elem(&active_io_args, &pid_tgid);
	/* Once per process, when its main thread leaves. */
	if (tgid != (__u32)pid_tgid || !is_selected(tgid))
		return 0;
	/* The pid may be reused by an unrelated process. */
	bpf_map_delete_elem(&traced_pids, &tgid);
	struct sonde_process_exit_event ev = {};
	fill_header(&ev.hdr, SONDE_EV_PROCESS_EXIT, pid_tgid, -1, NULL, bpf_ktime_get_ns());
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sonde_tp_sched_process_exec(void *ctx)
{
	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (!bpf_map_lookup_elem(&traced_comms, comm))
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 one = SONDE_PID_SELECTED;
	bpf_map_update_elem(&traced_pids, &tgid, &one, BPF_NOEXIST);
	return 0;
}

/* A process selected with its descendants passes the selection on to
 * every process it forks (a shell's server, a master's workers), at fork,
 * before the child's first syscall. Threads share the tgid: nothing to do. */
SEC("raw_tracepoint/sched_process_fork")
int sonde_raw_sched_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	if (child_tgid == parent_tgid || child_tgid == self_pid)
		return 0;
	__u8 *sel = bpf_map_lookup_elem(&traced_pids, &parent_tgid);
	if (!sel || *sel != SONDE_PID_SELECTED_WITH_DESCENDANTS)
		return 0;
	__u8 value = SONDE_PID_SELECTED_WITH_DESCENDANTS;
	bpf_map_update_elem(&traced_pids, &child_tgid, &value, BPF_ANY);
	return 0;
}
