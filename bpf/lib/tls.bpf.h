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
 * a connection's first SSL_write already knows its socket. The connection is then
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
};

/* An SSL_read/SSL_write/SSL_do_handshake call in progress on a thread. */
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
	__u8 _pad[2];
};

/* A plain hash: an entry lives for one call and is deleted at its return
 * (or when its thread exits). */
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
	__u64 flags = call->op == SONDE_TLS_HANDSHAKE ? BPF_NOEXIST : BPF_ANY;
	long err = bpf_map_update_elem(&tls_calls, &pid_tgid, call, flags);
	if (err && err != -17 /* EEXIST: a read or write is in progress */)
		count_drop(SONDE_DROP_THREAD_TABLE_FULL);
}

/* The socket this thread read last, -1 if none: with a memory BIO (Node)
 * no syscall happens inside SSL_read, whose ciphertext the thread read from
 * its socket just before. */
static __always_inline __s32 tls_thread_socket_read(__u64 pid_tgid)
{
	struct sonde_thread_read *t = bpf_map_lookup_elem(&thread_last_read, &pid_tgid);
	return t ? t->socket_fd : -1;
}

/* The socket of a call at its return: the one a syscall inside it showed,
 * else the one its SSL* is known by, else (a read or a handshake over a
 * memory BIO) the socket the thread read last; remembered for the SSL*.
 * -1 when none is known. */
static __always_inline __s32 tls_resolve_fd(__u64 pid_tgid, struct sonde_tls_call *call)
{
	struct sonde_tls_key key = { .pid = pid_tgid >> 32, .ssl = call->ssl };
	__s32 *known = bpf_map_lookup_elem(&tls_fds, &key);
	__s32 fd = call->fd;
	if (fd < 0 && known)
		return *known;
	if (fd < 0 && call->op != SONDE_TLS_WRITE)
		fd = tls_thread_socket_read(pid_tgid);
	if (fd >= 0 && (!known || *known != fd))
		bpf_map_update_elem(&tls_fds, &key, &fd, BPF_ANY);
	return fd;
}

/* A connection's bytes come from TLS calls from now on: whatever its
 * ciphertext made of it (unknown starts, ignored) is forgotten. */
static __always_inline void tls_adopt(struct sonde_conn_state *c)
{
	if (c->flags & SONDE_CONN_TLS)
		return;
	c->flags = SONDE_CONN_TLS;
	c->unknown_starts = 0;
	c->cur_direction = 0;
	c->cur_class = SONDE_CLASS_UNKNOWN;
	c->cur_bytes = 0;
	c->short_bytes = 0;
	c->head_left_bytes = 0;
	c->tail_bytes = 0;
	c->protocol = SONDE_PROTO_UNKNOWN;
}

/* A syscall moved bytes on socket `c` (fd). True when they are TLS
 * ciphertext, which must not be parsed: the connection is already TLS, or
 * this thread is inside an SSL call, which then learns its socket. */
static __always_inline bool tls_ciphertext(struct sonde_conn_state *c, __s32 fd, __u64 pid_tgid)
{
	bool tls = c->flags & SONDE_CONN_TLS;
	if (!tls && (!tls_probes_attached || (c->flags & SONDE_CONN_SYNCED) || !c->sock_addr))
		return false;
	struct sonde_tls_call *call = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!call)
		return tls;
	call->fd = fd;
	tls_adopt(c);
	return true;
}

#endif
