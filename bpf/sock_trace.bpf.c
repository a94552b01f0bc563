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
 * exit, when the buffer has been filled.
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

static __always_inline __u8 peek_class(const struct user_chunk *uc, __u64 available)
{
	__u8 head[8] = {};
	if (available < 8 || uc->len < 8)
		return SONDE_CLASS_UNKNOWN;
	if (bpf_probe_read_user(head, sizeof(head), (void *)uc->base))
		return SONDE_CLASS_UNKNOWN;
	return classify(head, 8);
}

static __always_inline void emit_msg_start(struct sonde_conn_state *c, const struct io_args *a,
					   const struct user_chunk *uc, __u64 pid_tgid, __u64 now_ns,
					   __u64 chunk_bytes, __u8 msg_class,
					   const struct sonde_prev_message *prev)
{
	__u32 zero = 0;
	struct sonde_msg_start_event *ev = bpf_map_lookup_elem(&msg_start_scratch, &zero);
	if (!ev)
		return;
	fill_header(&ev->hdr, SONDE_EV_MSG_START, pid_tgid, a->fd, c, now_ns);
	ev->hdr.direction = a->direction;
	ev->hdr.msg_class = msg_class;
	ev->tuple = c->tuple;
	ev->prev = *prev;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	ev->chunk_bytes = chunk_bytes > 0xffffffff ? 0xffffffff : chunk_bytes;

	__u32 cap = payload_capture_bytes;
	if (cap > SONDE_MAX_PAYLOAD_BYTES)
		cap = SONDE_MAX_PAYLOAD_BYTES;
	if (chunk_bytes < cap)
		cap = chunk_bytes;

	/* Headers are what the parsers need, and they come first; a body in a
	 * later iovec is not worth a second copy loop. */
	__u32 copied = 0;
	__u32 n = uc->len < cap ? uc->len : cap;
	if (n > 0 && n <= SONDE_MAX_PAYLOAD_BYTES && !bpf_probe_read_user(ev->payload, n, (void *)uc->base))
		copied = n;
	ev->payload_bytes = copied;

	__u64 size = SONDE_MSG_START_HEADER_BYTES + copied;
	if (size > sizeof(*ev))
		return;
	if (bpf_ringbuf_output(&events, ev, size, ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);
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

/* One chunk of data moved on fd: decide whether it starts a message, emit
 * the boundary event if so, and account its bytes. */
/* `resolved` is the syscall's first user buffer when the caller already
 * had to read it, else NULL: it is then read here, only for connections
 * that are followed. */
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
	bool flipped = c->cur_direction != a->direction;
	/* Peek at every chunk, not only at flips, so that pipelined messages
	 * written one per syscall are told apart. */
	__u8 msg_class = peek_class(&uc, chunk_bytes);
	if (flipped || msg_class != SONDE_CLASS_UNKNOWN) {
		struct sonde_prev_message prev = {
			.last_chunk_ns = c->cur_last_ns,
			.total_bytes = c->cur_bytes,
			.seq = c->msg_seq,
			.direction = c->cur_direction,
		};
		c->msg_seq += 1;
		c->cur_direction = a->direction;
		c->cur_start_ns = now_ns;
		c->cur_last_ns = now_ns;
		c->cur_bytes = 0;
		if (msg_class != SONDE_CLASS_UNKNOWN) {
			c->flags |= SONDE_CONN_SYNCED;
		} else if (!(c->flags & SONDE_CONN_SYNCED)) {
			if (++c->unknown_starts >= max_unknown_starts) {
				c->flags |= SONDE_CONN_IGNORED;
				count_drop(SONDE_DROP_NOT_SYNCED);
			}
		}
		if (c->flags & SONDE_CONN_SYNCED)
			emit_msg_start(c, a, &uc, pid_tgid, now_ns, chunk_bytes, msg_class, &prev);
	}
	if (account_bytes) {
		c->cur_bytes += chunk_bytes;
		c->cur_last_ns = now_ns;
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

	if (args.direction == SONDE_DIR_INGRESS) {
		on_chunk(&args, NULL, pid_tgid, ret, true);
		return;
	}
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = args.fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	if (!c || (c->flags & SONDE_CONN_IGNORED) || c->cur_direction != SONDE_DIR_EGRESS)
		return;
	c->cur_bytes += ret;
	c->cur_last_ns = bpf_ktime_get_ns();
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

SEC("tracepoint/syscalls/sys_enter_read")
int sonde_tp_sys_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(ctx->args[1], ctx->args[2], ctx->args[0], IO_BUF, SONDE_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sonde_tp_sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(ctx->args[1], ctx->args[2], ctx->args[0], IO_BUF, SONDE_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sonde_tp_sys_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(ctx->args[1], ctx->args[2], ctx->args[0], IO_IOV, SONDE_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sonde_tp_sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	stash_args(ctx->args[1], 0, ctx->args[0], IO_MSG, SONDE_DIR_INGRESS);
	return 0;
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
int sonde_tp_sys_exit_read(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sonde_tp_sys_exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_readv")
int sonde_tp_sys_exit_readv(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sonde_tp_sys_exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { on_io_exit(ctx->ret); return 0; }
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
	__u8 one = 1;
	bpf_map_update_elem(&traced_pids, &tgid, &one, BPF_ANY);
	return 0;
}

/*
 * The same hooks through the two raw syscall tracepoints (selected by the
 * loader instead of the per-syscall ones above, and the default). A raw
 * tracepoint runs for every syscall, but skips the per-event perf buffer
 * that each syscalls:sys_* tracepoint fills before calling BPF: on this
 * project's VMs that halves the cost of a hooked syscall, and an unselected
 * process pays one switch and one map lookup.
 *
 * Syscall numbers: arch/x86/entry/syscalls/syscall_64.tbl and
 * include/uapi/asm-generic/unistd.h (arm64).
 */
#if defined(__TARGET_ARCH_x86)
#define SONDE_NR_read 0
#define SONDE_NR_write 1
#define SONDE_NR_close 3
#define SONDE_NR_readv 19
#define SONDE_NR_writev 20
#define SONDE_NR_sendfile 40
#define SONDE_NR_connect 42
#define SONDE_NR_accept 43
#define SONDE_NR_sendto 44
#define SONDE_NR_recvfrom 45
#define SONDE_NR_sendmsg 46
#define SONDE_NR_recvmsg 47
#define SONDE_NR_accept4 288
#elif defined(__TARGET_ARCH_arm64)
#define SONDE_NR_read 63
#define SONDE_NR_write 64
#define SONDE_NR_close 57
#define SONDE_NR_readv 65
#define SONDE_NR_writev 66
#define SONDE_NR_sendfile 71
#define SONDE_NR_connect 203
#define SONDE_NR_accept 202
#define SONDE_NR_sendto 206
#define SONDE_NR_recvfrom 207
#define SONDE_NR_sendmsg 211
#define SONDE_NR_recvmsg 212
#define SONDE_NR_accept4 242
#else
#error "syscall numbers for this architecture are missing"
#endif

SEC("raw_tracepoint/sys_enter")
int sonde_raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long id = ctx->args[1];
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];

	switch (id) {
	case SONDE_NR_read:
	case SONDE_NR_recvfrom:
	case SONDE_NR_readv:
	case SONDE_NR_recvmsg:
	case SONDE_NR_write:
	case SONDE_NR_sendto:
	case SONDE_NR_writev:
	case SONDE_NR_sendmsg:
	case SONDE_NR_sendfile:
	case SONDE_NR_accept:
	case SONDE_NR_accept4:
	case SONDE_NR_close:
		break;
	case SONDE_NR_connect:
		on_connect_enter(PT_REGS_PARM1_CORE_SYSCALL(regs));
		return 0;
	default:
		return 0;
	}
	/* Everything below is per-process work: pay for reading the syscall's
	 * arguments only when the process is traced. */
	if (!is_selected(bpf_get_current_pid_tgid() >> 32))
		return 0;
	int fd = PT_REGS_PARM1_CORE_SYSCALL(regs);
	switch (id) {
	case SONDE_NR_read:
	case SONDE_NR_recvfrom:
		stash_args(PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs), fd, IO_BUF, SONDE_DIR_INGRESS);
		break;
	case SONDE_NR_readv:
		stash_args(PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs), fd, IO_IOV, SONDE_DIR_INGRESS);
		break;
	case SONDE_NR_recvmsg:
		stash_args(PT_REGS_PARM2_CORE_SYSCALL(regs), 0, fd, IO_MSG, SONDE_DIR_INGRESS);
		break;
	case SONDE_NR_write:
	case SONDE_NR_sendto:
		on_write_enter(PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs), fd, IO_BUF);
		break;
	case SONDE_NR_writev:
		on_write_enter(PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs), fd, IO_IOV);
		break;
	case SONDE_NR_sendmsg:
		on_write_enter(PT_REGS_PARM2_CORE_SYSCALL(regs), 0, fd, IO_MSG);
		break;
	case SONDE_NR_sendfile:
		stash_args(0, PT_REGS_PARM4_CORE_SYSCALL(regs), fd, IO_SENDFILE, SONDE_DIR_EGRESS);
		break;
	case SONDE_NR_accept:
	case SONDE_NR_accept4:
		stash_args(0, 0, fd, IO_ACCEPT, SONDE_DIR_NONE);
		break;
	case SONDE_NR_close:
		on_close_enter(fd);
		break;
	}
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int sonde_raw_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_args *a = bpf_map_lookup_elem(&active_io_args, &pid_tgid);
	if (!a)
		return 0;
	long ret = ctx->args[1];
	if (a->kind == IO_ACCEPT)
		on_conn_exit(ret, SONDE_ROLE_SERVER);
	else if (a->kind == IO_CONNECT)
		on_conn_exit(ret, SONDE_ROLE_CLIENT);
	else
		on_io_exit(ret);
	return 0;
}
