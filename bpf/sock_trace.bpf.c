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
 * hand the client's trace context to the server span; their byte counts
 * are added at exit. Reads are handled at exit alone. Every exit takes the
 * syscall's arguments from the task's saved registers, so nothing is kept
 * per thread between entry and exit.
 *
 * Three things go past the first chunk of a message: a chunk too short to
 * classify is held back and joined to the next one; a request head that
 * does not end in its first capture is followed in continuation events up
 * to SONDE_MAX_HEAD_BYTES; and each chunk of a response leaves its last
 * bytes in the connection's state, where userspace finds the end of a
 * chunked body. That per-connection logic lives in lib/conn_state.bpf.h,
 * so that other hooks (the TLS uprobes) can feed it; this file maps the
 * syscalls onto it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "shared/events.h"
#include "lib/maps.bpf.h"
#include "lib/conn_state.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";


/* A syscall's arguments at its exit, from the registers the task saved on
 * entry, which the syscall leaves as they were (x86-64 and arm64 return in
 * ax/x0 only; arm64 keeps the first argument in orig_x0). Reading them
 * there costs less than stashing them per thread at entry: a hash update
 * at entry and a lookup and delete at exit were a third of a response
 * write's BPF time, and a thread killed inside a syscall leaves nothing
 * behind. bpf_task_pt_regs gives a pointer the verifier trusts, so the
 * registers are plain loads (PT_REGS_PARM*_SYSCALL; libbpf keeps a CO-RE
 * read where an architecture needs one, as arm64's orig_x0): a
 * bpf_probe_read_kernel call per register cost about 90 ns a request (read
 * and writev exits, on x86-64). */
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

static __always_inline struct io_args args_at_exit(__u8 kind, __u8 direction)
{
	struct pt_regs *regs = syscall_regs();
	struct io_args a = {
		.fd = PT_REGS_PARM1_SYSCALL(regs),
		.ptr = PT_REGS_PARM2_SYSCALL(regs),
		.count = kind == IO_MSG ? 0 : PT_REGS_PARM3_SYSCALL(regs),
		.kind = kind,
		.direction = direction,
	};
	return a;
}

/* Egress at entry: the message start (and its payload) is reported before
 * the bytes can reach a peer; the byte count is added at exit. */
static __always_inline void on_write_enter(__u64 ptr, __u64 count, int fd, __u8 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	struct io_args a = { .ptr = ptr, .count = count, .fd = fd, .kind = kind, .direction = SONDE_DIR_EGRESS };
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	if (c && c->protocol == SONDE_PROTO_HTTP2 && !(c->flags & SONDE_CONN_TLS)) {
		/* HTTP/2 is walked at exit alone, where the byte count says how
		 * much really went; only its time is taken here. */
		c->write_start_ns = bpf_ktime_get_ns();
		return;
	}
	struct user_chunk uc = resolve_chunk(&a);
	if (uc.len == 0)
		return;
	on_chunk(&a, &uc, c, pid_tgid, uc.len, false, 0);
}

/* What a write sent, once its return says how much: the byte count and
 * end time of the message, and for HTTP/2 its frames. `entered_ns` is the
 * write's entry, 0 if unknown: a message's last write is dated there, since
 * on loopback the peer can read the bytes before the write returns, and a
 * server span must not end after the client span that waits for it. */
static __always_inline void write_done(struct sonde_conn_state *c, const struct io_args *a, __u64 pid_tgid,
				       long ret, __u64 entered_ns)
{
	__u64 at_ns = entered_ns ? entered_ns : bpf_ktime_get_ns();
	if (c->protocol == SONDE_PROTO_HTTP2) {
		h2_walk(c, a, pid_tgid, ret, at_ns);
		return;
	}
	if (c->cur_direction != SONDE_DIR_EGRESS)
		return;
	c->cur_bytes += ret;
	c->cur_last_ns = at_ns;
	if (c->cur_class == SONDE_CLASS_HTTP1_RESPONSE)
		record_tail(c, a, ret);
}

/* write_done for SSL_write's return, as a function of its own: inlined
 * next to on_chunk it would pass the 512-byte stack. */
__noinline int tls_write_done(struct sonde_conn_state *c, const struct io_args *a, __u64 pid_tgid, __u64 moved,
			       __u64 entered_ns)
{
	if (!c || !a)
		return 0;
	write_done(c, a, pid_tgid, moved, entered_ns);
	return 0;
}

static __always_inline void on_write_exit(long ret, __u8 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ret <= 0 || !is_selected(pid_tgid >> 32))
		return;
	struct io_args args = args_at_exit(kind, SONDE_DIR_EGRESS);
	if (kind == IO_SENDFILE)
		args.ptr = args.count = 0;
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = args.fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	/* A TLS connection's syscalls move ciphertext: its plaintext writes
	 * are accounted at SSL_write's return. */
	if (!c || (c->flags & (SONDE_CONN_IGNORED | SONDE_CONN_TLS)))
		return;
	__u64 entered_ns = c->write_start_ns;
	c->write_start_ns = 0;
	write_done(c, &args, pid_tgid, ret, entered_ns);
}

/* Reads at exit only: a read that was already blocked when sonde attached
 * (a thread-per-connection server idle in recv) is seen too, and every
 * read of every process pays one tracepoint hit instead of two. */
static __always_inline void on_read_exit(long ret, __u8 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ret <= 0 || !is_selected(pid_tgid >> 32))
		return;
	struct io_args a = args_at_exit(kind, SONDE_DIR_INGRESS);
	on_chunk(&a, NULL, NULL, pid_tgid, ret, true, 0);
}

/* accept()/connect() tell which end the process is; connections first seen
 * later get SONDE_ROLE_UNKNOWN and userspace infers the role. sonde's own
 * connections are recorded too, so that the exporter's traffic to a local
 * backend is never traced as somebody else's request. */
static __always_inline void on_conn_exit(long ret, __u8 role)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid != self_pid && !is_selected(tgid))
		return;
	/* -EINPROGRESS: a non-blocking connect already has its local port */
	if (role == SONDE_ROLE_SERVER ? ret < 0 : (ret != 0 && ret != -115))
		return;
	int fd = role == SONDE_ROLE_SERVER ? ret : (int)PT_REGS_PARM1_SYSCALL(syscall_regs());

	struct sock *sk = sonde_sock_from_fd(fd);
	if (!sk || !sonde_sock_is_tcp(sk))
		return;
	if (tgid == self_pid) {
		struct sonde_self_connect_event ev = {};
		fill_header(&ev.hdr, SONDE_EV_SELF_CONNECT, pid_tgid, fd, NULL, bpf_ktime_get_ns());
		sonde_read_tuple(sk, &ev.tuple);
		if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags()))
			count_drop(SONDE_DROP_RINGBUF_FULL);
		return;
	}
	struct sonde_conn_key key = { .pid = tgid, .fd = fd };
	struct sonde_conn_state *c = new_conn_state(&key, sk, role);
	if (!c || role != SONDE_ROLE_CLIENT)
		return;
	struct sonde_connect_event ev = {};
	fill_header(&ev.hdr, SONDE_EV_CONNECT, pid_tgid, fd, c, bpf_ktime_get_ns());
	set_cause(&ev.hdr, pid_tgid);
	ev.tuple = c->tuple;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);
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

SEC("tracepoint/syscalls/sys_exit_read")
int sonde_tp_sys_exit_read(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_BUF); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sonde_tp_sys_exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_BUF); return 0; }
SEC("tracepoint/syscalls/sys_exit_readv")
int sonde_tp_sys_exit_readv(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_IOV); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sonde_tp_sys_exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { on_read_exit(ctx->ret, IO_MSG); return 0; }
SEC("tracepoint/syscalls/sys_exit_write")
int sonde_tp_sys_exit_write(struct trace_event_raw_sys_exit *ctx) { on_write_exit(ctx->ret, IO_BUF); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendto")
int sonde_tp_sys_exit_sendto(struct trace_event_raw_sys_exit *ctx) { on_write_exit(ctx->ret, IO_BUF); return 0; }
SEC("tracepoint/syscalls/sys_exit_writev")
int sonde_tp_sys_exit_writev(struct trace_event_raw_sys_exit *ctx) { on_write_exit(ctx->ret, IO_IOV); return 0; }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sonde_tp_sys_exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { on_write_exit(ctx->ret, IO_MSG); return 0; }
/* nginx sends static bodies with sendfile after writing the head with
 * writev: only the byte count and the entry time matter, so the entry
 * program does nothing but date it. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sonde_tp_sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return 0;
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = ctx->args[0] };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	if (c && !(c->flags & SONDE_CONN_IGNORED))
		c->write_start_ns = bpf_ktime_get_ns();
	return 0;
}
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sonde_tp_sys_exit_sendfile64(struct trace_event_raw_sys_exit *ctx) { on_write_exit(ctx->ret, IO_SENDFILE); return 0; }

SEC("tracepoint/syscalls/sys_exit_accept4")
int sonde_tp_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx) { on_conn_exit(ctx->ret, SONDE_ROLE_SERVER); return 0; }
SEC("tracepoint/syscalls/sys_exit_accept")
int sonde_tp_sys_exit_accept(struct trace_event_raw_sys_exit *ctx) { on_conn_exit(ctx->ret, SONDE_ROLE_SERVER); return 0; }

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
	bpf_map_delete_elem(&thread_last_read, &pid_tgid);
	if (tls_probes_attached)
		bpf_map_delete_elem(&tls_calls, &pid_tgid);
	/* Once per process, when its main thread leaves. */
	if (tgid != (__u32)pid_tgid)
		return 0;
	/* Its children get a new parent now, before it is reaped. */
	count_process(SONDE_COUNT_PROCESS_CHANGES);
	if (!is_selected(tgid))
		return 0;
	/* The pid may be reused by an unrelated process. */
	deselect_pid(tgid);
	struct sonde_process_exit_event ev = {};
	fill_header(&ev.hdr, SONDE_EV_PROCESS_EXIT, pid_tgid, -1, NULL, bpf_ktime_get_ns());
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sonde_tp_sched_process_exec(void *ctx)
{
	count_process(SONDE_COUNT_EXECS);
	count_process(SONDE_COUNT_PROCESS_CHANGES);
	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (!bpf_map_lookup_elem(&traced_comms, comm))
		return 0;
	select_pid(bpf_get_current_pid_tgid() >> 32, SONDE_PID_SELECTED, BPF_NOEXIST);
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
	if (child_tgid == parent_tgid)
		return 0;
	count_process(SONDE_COUNT_PROCESS_CHANGES);
	if (child_tgid == self_pid)
		return 0;
	__u8 *sel = bpf_map_lookup_elem(&traced_pids, &parent_tgid);
	if (!sel || *sel != SONDE_PID_SELECTED_WITH_DESCENDANTS)
		return 0;
	select_pid(child_tgid, SONDE_PID_SELECTED_WITH_DESCENDANTS, BPF_ANY);
	return 0;
}

/* A process leaves /proc only when its parent reaps it, after its exit:
 * the last change to the list of processes it makes. Threads come and go
 * with no change to the list (a Python server may start one per
 * connection), so only a main thread counts. */
SEC("raw_tracepoint/sched_process_free")
int sonde_raw_sched_process_free(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	if (BPF_CORE_READ(task, pid) == BPF_CORE_READ(task, tgid))
		count_process(SONDE_COUNT_PROCESS_CHANGES);
	return 0;
}

/* Node.js runs JavaScript that no read called for at two places between
 * the turns of its event loop, after the turn's reads: its timers
 * (node::Environment::RunTimers) and its setImmediate callbacks (through
 * the public node::MakeCallback, only when some are due). A call made there
 * serves no read, whatever the thread read last (docs/design-notes.md,
 * "Linking on event loops"). Attached per selected node process by
 * userspace; it fires once per turn that has such callbacks to run, not
 * per request. */
SEC("uprobe")
int sonde_up_node_no_read_callback(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return 0;
	note_thread_read(pid_tgid, SONDE_NO_CAUSE, 0, -1);
	return 0;
}

/* OpenSSL (libssl, or a binary that links it statically), attached per
 * library by userspace (BpfTracer::attachTls) for every process that maps
 * it; each program returns at once for a process that is not selected.
 * SSL_read/SSL_write and their _ex forms are separate entry points in
 * OpenSSL 3 (neither calls the other), so each call is seen once; where
 * both call one internal function that is cheaper to probe, the _ex
 * programs go on it alone (native/src/core/UprobeSite.h). */
static __always_inline void tls_read_enter(struct pt_regs *ctx, __u64 out_len)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	__u64 ssl = PT_REGS_PARM1(ctx);
	struct sonde_tls_call call = { .ssl = ssl, .buf = PT_REGS_PARM2(ctx), .out_len = out_len,
				       .entry_ns = bpf_ktime_get_ns(), .fd = tls_known_fd(pid_tgid, ssl),
				       .op = SONDE_TLS_READ };
	call.fd_remembered = call.fd >= 0;
	tls_call_enter(pid_tgid, &call);
}

/* A write whose socket is known starts its message here, before its bytes
 * can reach a peer: a client on the same host then reaches sonde before
 * the server it calls, as with a plain write. */
static __always_inline void tls_write_enter(struct pt_regs *ctx, __u64 out_len)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	__u64 ssl = PT_REGS_PARM1(ctx);
	__s32 num = (__s32)PT_REGS_PARM3(ctx);
	struct sonde_tls_call call = { .ssl = ssl, .buf = PT_REGS_PARM2(ctx), .out_len = out_len,
				       .entry_ns = bpf_ktime_get_ns(), .fd = tls_known_fd(pid_tgid, ssl),
				       .op = SONDE_TLS_WRITE, .num = num > 0 ? num : 0 };
	call.fd_remembered = call.fd >= 0;
	struct sonde_conn_state *c = NULL;
	if (call.fd >= 0 && num > 0) {
		struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = call.fd };
		c = bpf_map_lookup_elem(&conn_states, &key);
		if (!c)
			c = new_conn_state(&key, sonde_sock_from_fd(call.fd), SONDE_ROLE_UNKNOWN);
	}
	call.started = c != NULL;
	if (c && c->tls_unsent_write == call.num) {
		/* The rest of a write that failed or went in part: OpenSSL is
		 * called again with the bytes it did not send, whose message has
		 * started and whose frames were walked. */
		c->tls_unsent_write = 0;
		call.walked = c->protocol == SONDE_PROTO_HTTP2;
		tls_call_enter(pid_tgid, &call);
		return;
	}
	if (c) {
		c->tls_unsent_write = 0;
		struct io_args a = { .ptr = call.buf, .count = num, .fd = call.fd, .kind = IO_BUF,
				     .direction = SONDE_DIR_EGRESS, .from_tls = 1 };
		on_chunk(&a, NULL, c, pid_tgid, num, false, call.entry_ns);
		/* HTTP/2 frames are walked here too, all `num` bytes: OpenSSL
		 * sends them all or is called again with what it did not send
		 * (tls_unsent_write), and a same-host server could otherwise read
		 * a stream's HEADERS before its client's walk reached sonde. */
		if (c->protocol == SONDE_PROTO_HTTP2) {
			tls_write_done(c, &a, pid_tgid, num, call.entry_ns);
			call.walked = 1;
		}
	}
	tls_call_enter(pid_tgid, &call);
}

/* The _ex forms (and ssl_read_internal/ssl_write_internal, which take
 * their arguments) write their byte count through their fourth argument. */
SEC("uprobe")
int sonde_up_ssl_read(struct pt_regs *ctx) { tls_read_enter(ctx, 0); return 0; }
SEC("uprobe")
int sonde_up_ssl_read_ex(struct pt_regs *ctx) { tls_read_enter(ctx, PT_REGS_PARM4(ctx)); return 0; }
SEC("uprobe")
int sonde_up_ssl_write(struct pt_regs *ctx) { tls_write_enter(ctx, 0); return 0; }
SEC("uprobe")
int sonde_up_ssl_write_ex(struct pt_regs *ctx) { tls_write_enter(ctx, PT_REGS_PARM4(ctx)); return 0; }

/* SSL_do_handshake (SSL_connect and SSL_accept call it): its syscalls show
 * the socket before any plaintext moves. */
SEC("uprobe")
int sonde_up_ssl_do_handshake(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return 0;
	struct sonde_tls_call call = { .ssl = PT_REGS_PARM1(ctx), .fd = -1, .op = SONDE_TLS_HANDSHAKE };
	tls_call_enter(pid_tgid, &call);
	return 0;
}

SEC("uretprobe")
int sonde_uret_ssl_do_handshake(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct sonde_tls_call *call = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!call || call->op != SONDE_TLS_HANDSHAKE || call->awaiting_socket)
		return 0;
	if (tls_resolve_fd(pid_tgid, call, 0) < 0)
		tls_await_socket(call);
	else
		tls_call_done(call);
	return 0;
}

/* A call's record at its return, and the connection its plaintext belongs
 * to: NULL when nothing moved, or its socket is not known yet. */
static __noinline struct sonde_conn_state *tls_call_exit(struct pt_regs *ctx, __u64 pid_tgid,
							 struct sonde_tls_call *call, __u64 *moved)
{
	struct sonde_tls_call *found = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!found || found->op == SONDE_TLS_HANDSHAKE || found->op == SONDE_TLS_NONE || found->awaiting_socket)
		return NULL;
	*call = *found;
	/* The four return an int: the upper half of the register is not
	 * sign-extended, and a -1 read as a long would be 4 GiB moved. */
	int ret = (int)PT_REGS_RC(ctx);
	*moved = 0;
	if (call->out_len) {
		/* SSL_read_ex/SSL_write_ex: 1 on success, the count in *out_len */
		if (ret == 1 && bpf_probe_read_user(moved, sizeof(*moved), (void *)call->out_len))
			*moved = 0;
	} else if (ret > 0) {
		*moved = ret;
	}
	/* Looked for even when nothing moved: over a memory BIO, the
	 * handshake runs inside SSL_read calls that return WANT_READ, and the
	 * ciphertext they make is written next. */
	call->fd = tls_resolve_fd(pid_tgid, call, *moved);
	if (call->fd < 0)
		tls_await_socket(found);
	else
		tls_call_done(found);
	if (*moved == 0 && !call->started)
		return NULL;
	if (call->fd < 0) {
		count_drop(SONDE_DROP_TLS_NO_SOCKET);
		return NULL;
	}
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = call->fd };
	struct sonde_conn_state *c = bpf_map_lookup_elem(&conn_states, &key);
	if (!c)
		c = new_conn_state(&key, sonde_sock_from_fd(call->fd), SONDE_ROLE_UNKNOWN);
	if (c && call->started && *moved < call->num) {
		/* A write whose message started at entry failed or went in
		 * part: OpenSSL will be called again with the rest. */
		c->tls_unsent_write = call->num - *moved;
	}
	return *moved ? c : NULL;
}

/* The return of SSL_read or SSL_read_ex: the plaintext read goes through
 * on_chunk as the connection's bytes, as a read's would. */
SEC("uretprobe")
int sonde_uret_ssl_read(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct sonde_tls_call call;
	__u64 moved;
	struct sonde_conn_state *c = tls_call_exit(ctx, pid_tgid, &call, &moved);
	if (!c)
		return 0;
	struct io_args a = { .ptr = call.buf, .count = moved, .fd = call.fd, .kind = IO_BUF,
			     .direction = SONDE_DIR_INGRESS, .from_tls = 1 };
	on_chunk(&a, NULL, c, pid_tgid, moved, true, 0);
	return 0;
}

/* The return of SSL_write or SSL_write_ex: what it sent, dated at the
 * call's entry, and its message start too when the entry could not know
 * the socket (the first write of a session opened before sonde). */
SEC("uretprobe")
int sonde_uret_ssl_write(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct sonde_tls_call call;
	__u64 moved;
	struct sonde_conn_state *c = tls_call_exit(ctx, pid_tgid, &call, &moved);
	if (!c)
		return 0;
	struct io_args a = { .ptr = call.buf, .count = moved, .fd = call.fd, .kind = IO_BUF,
			     .direction = SONDE_DIR_EGRESS, .from_tls = 1 };
	if (!call.started)
		on_chunk(&a, NULL, c, pid_tgid, moved, false, call.entry_ns);
	c->write_start_ns = 0;
	if (!call.walked)
		tls_write_done(c, &a, pid_tgid, moved, call.entry_ns);
	return 0;
}

/* An SSL* freed: its address may come back for another connection. */
SEC("uprobe")
int sonde_up_ssl_free(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return 0;
	struct sonde_tls_key key = { .pid = pid_tgid >> 32, .ssl = PT_REGS_PARM1(ctx) };
	bpf_map_delete_elem(&tls_fds, &key);
	return 0;
}
