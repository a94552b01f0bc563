/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* TLS: the plaintext of OpenSSL's SSL_read/SSL_write calls, and which
 * socket each SSL* belongs to.
 *
 * A call's plaintext is taken at its return, when the byte count is known.
 * Its socket is the one the same thread moves bytes on during the call
 * (the ciphertext: OpenSSL with a socket BIO reads and writes its fd inside
 * SSL_read/SSL_write); it is remembered per SSL*, since a call served from
 * OpenSSL's own buffer makes no syscall at all; SSL_do_handshake (which
 * SSL_connect and SSL_accept call) is watched for the same reason, so that
 * a connection's first SSL_write already knows its socket. Over a memory
 * BIO (Node) no syscall happens inside a call: the socket is the one the
 * thread read just before a read that returned plaintext, or the one it
 * writes the call's ciphertext to just after. The connection is then
 * marked TLS: from there on its syscalls' bytes are ciphertext and are
 * never parsed, and the plaintext goes through the same on_chunk as any
 * socket's bytes. */
#ifndef SONDE_LIB_TLS_BPF_H
#define SONDE_LIB_TLS_BPF_H

#include "maps.bpf.h"

/* What a TLS call in progress on a thread is. */
enum sonde_tls_op {
	SONDE_TLS_HANDSHAKE = 0,
	SONDE_TLS_READ = SONDE_DIR_INGRESS,
	SONDE_TLS_WRITE = SONDE_DIR_EGRESS,
	/* The thread's entry between two calls. */
	SONDE_TLS_NONE = 0xff,
};

/* A thread's SSL_read/SSL_write/SSL_do_handshake call in progress, or,
 * with op SONDE_TLS_NONE, its entry between two calls. */
struct sonde_tls_call {
	__u64 ssl;
	__u64 buf;
	__u64 out_len;  /* SSL_*_ex: where the byte count is written; 0 otherwise */
	__u64 entry_ns;
	__s32 fd;       /* the socket, once known; -1 before */
	__u8 op;        /* enum sonde_tls_op; for reads and writes, the direction */
	/* A write whose message start went out at entry (its socket was
	 * known): the return only accounts what it sent. */
	__u8 started;
	/* Returned without its socket known (a memory BIO: Node): the entry
	 * stays, dated at the return (entry_ns), for the ciphertext write
	 * that follows the call on the same thread to name the socket. */
	__u8 awaiting_socket;
	/* A write whose HTTP/2 frames were walked at entry. */
	__u8 walked;
	__u32 num;      /* SSL_write: the bytes asked to be sent */
	/* `fd` is the one tls_fds holds for the SSL*: the return need not
	 * look it up again. */
	__u8 fd_remembered;
	__u8 _pad[3];
};

/* How long after a call's return the thread's next socket write is taken
 * for the call's ciphertext: Node writes it in the same stack (EncOut). */
#define SONDE_TLS_AWAIT_SOCKET_NS 1000000ull

/* A plain hash, an entry per thread that has called OpenSSL, deleted when
 * the thread exits. A call writes its thread's entry in place and marks it
 * SONDE_TLS_NONE at its return: an update and a delete per call, each a
 * trip through the map's free list, cost the thread more than the lookup
 * that finds its entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct sonde_tls_call);
} tls_calls SEC(".maps");

struct sonde_tls_key {
	__u32 pid;
	__u32 _pad;
	__u64 ssl;
};

/* The socket of each SSL* seen, until SSL_free. An entry the LRU evicts is
 * learned again from the next call that makes a syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sonde_tls_key);
	__type(value, __s32);
} tls_fds SEC(".maps");

/* Set by userspace once TLS uprobes are attached anywhere: until then no
 * syscall looks for a TLS call on its thread. */
__u8 tls_probes_attached = 0;

/* The socket of an SSL*, -1 when none of its calls has shown it yet. */
static __always_inline __s32 tls_known_fd(__u64 pid_tgid, __u64 ssl)
{
	struct sonde_tls_key key = { .pid = pid_tgid >> 32, .ssl = ssl };
	__s32 *known = bpf_map_lookup_elem(&tls_fds, &key);
	return known ? *known : -1;
}

/* Records a call at its entry. A handshake never replaces a read or write
 * in progress on the thread (OpenSSL may handshake inside them). */
static __always_inline void tls_call_enter(__u64 pid_tgid, const struct sonde_tls_call *call)
{
	struct sonde_tls_call *entry = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (entry) {
		if (call->op == SONDE_TLS_HANDSHAKE && entry->op != SONDE_TLS_NONE && !entry->awaiting_socket)
			return;
		*entry = *call;
		return;
	}
	if (bpf_map_update_elem(&tls_calls, &pid_tgid, call, BPF_ANY))
		count_drop(SONDE_DROP_THREAD_TABLE_FULL);
}

/* The call on the thread is over: its entry waits for the next one. */
static __always_inline void tls_call_done(struct sonde_tls_call *entry)
{
	entry->op = SONDE_TLS_NONE;
	entry->awaiting_socket = 0;
}

/* The TCP socket this thread read last, -1 if none: with a memory BIO
 * (Node) no syscall happens inside SSL_read, whose ciphertext the thread
 * read from its socket just before. */
static __always_inline __s32 tls_thread_socket_read(__u64 pid_tgid)
{
	struct sonde_thread_read *t = bpf_map_lookup_elem(&thread_last_read, &pid_tgid);
	return t ? t->socket_fd : -1;
}

static __always_inline void tls_remember_fd(__u64 pid_tgid, __u64 ssl, __s32 fd)
{
	struct sonde_tls_key key = { .pid = pid_tgid >> 32, .ssl = ssl };
	bpf_map_update_elem(&tls_fds, &key, &fd, BPF_ANY);
}

/* The socket of a call at its return, by the evidence that names it:
 * - a syscall inside the call (a socket BIO);
 * - else what its SSL* is known by;
 * - else, for a read that returned plaintext over a memory BIO, the socket
 *   the thread read last: the ciphertext came from there just before.
 * A call that moved nothing proves nothing about the thread's last read:
 * Node drives a client's first handshake step (the ClientHello) through
 * SSL_read before any byte of its socket was read, and taking the last
 * read then tied the SSL* to another connection for good. Such a call's
 * socket is the one its ciphertext is written to next (tls_ciphertext).
 * -1 when none is known yet. */
static __always_inline __s32 tls_resolve_fd(__u64 pid_tgid, const struct sonde_tls_call *call, __u64 moved)
{
	__s32 fd = call->fd;
	if (fd < 0) {
		__s32 known = tls_known_fd(pid_tgid, call->ssl);
		if (known >= 0)
			return known;
		if (call->op != SONDE_TLS_READ || moved == 0)
			return -1;
		fd = tls_thread_socket_read(pid_tgid);
		if (fd < 0)
			return -1;
	} else if (call->fd_remembered || tls_known_fd(pid_tgid, call->ssl) == fd) {
		return fd;
	}
	tls_remember_fd(pid_tgid, call->ssl, fd);
	return fd;
}

/* A call returned without its socket: its entry stays for the thread's
 * next socket write to name it. */
static __always_inline void tls_await_socket(struct sonde_tls_call *call)
{
	call->awaiting_socket = 1;
	call->entry_ns = bpf_ktime_get_ns();
}

/* A connection's bytes come from TLS calls from now on: whatever its
 * ciphertext made of it (unknown starts, ignored) is forgotten. False for
 * what is not a TCP socket: an SSL* taken for the wrong fd (a memory BIO's
 * guess) must not turn a pipe or a Unix socket into a connection. */
static __always_inline bool tls_adopt(struct sonde_conn_state *c)
{
	if (c->flags & SONDE_CONN_NOT_TCP)
		return false;
	if (c->flags & SONDE_CONN_TLS)
		return true;
	c->flags = SONDE_CONN_TLS;
	c->unknown_starts = 0;
	c->cur_direction = 0;
	c->cur_class = SONDE_CLASS_UNKNOWN;
	c->cur_bytes = 0;
	c->short_bytes = 0;
	c->head_left_bytes = 0;
	c->tail_bytes = 0;
	c->protocol = SONDE_PROTO_UNKNOWN;
	return true;
}

/* A syscall moved bytes on TCP socket `c` (fd). True when they are TLS
 * ciphertext, which must not be parsed: the connection is already TLS, or
 * this thread is inside an SSL call, which then learns its socket, or has
 * just returned from one that did not know it, and this is the write of
 * its ciphertext. */
static __always_inline bool tls_ciphertext(struct sonde_conn_state *c, __s32 fd, __u64 pid_tgid, __u8 direction)
{
	bool tls = c->flags & SONDE_CONN_TLS;
	/* The connection's flags first: they are in memory the caller has
	 * just read, where tls_probes_attached lives in a map of its own,
	 * which a synced connection's chunks then never touch. */
	if (!tls && ((c->flags & (SONDE_CONN_SYNCED | SONDE_CONN_NOT_TCP)) || !tls_probes_attached))
		return false;
	struct sonde_tls_call *call = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!call || call->op == SONDE_TLS_NONE)
		return tls;
	if (call->awaiting_socket) {
		__u64 ssl = call->ssl;
		bool written_by_it = direction == SONDE_DIR_EGRESS &&
				     bpf_ktime_get_ns() - call->entry_ns < SONDE_TLS_AWAIT_SOCKET_NS;
		tls_call_done(call);
		if (!written_by_it)
			return tls;
		tls_remember_fd(pid_tgid, ssl, fd);
		return tls_adopt(c);
	}
	if (call->fd != fd) {
		call->fd = fd;
		call->fd_remembered = 0;
	}
	return tls_adopt(c);
}

#endif
