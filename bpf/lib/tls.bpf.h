/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* TLS: the plaintext of OpenSSL's SSL_read/SSL_write calls, and which
 * socket each SSL* belongs to.
 *
 * A call's plaintext is taken at its return, when the byte count is known.
 * Its socket is the one the same thread moves bytes on during the call
 * (the ciphertext: OpenSSL with a socket BIO reads and writes its fd inside
 * SSL_read/SSL_write); it is remembered per SSL*, since a call served from
 * OpenSSL's own buffer makes no syscall at all. The connection is then
 * marked TLS: from there on its syscalls' bytes are ciphertext and are
 * never parsed, and the plaintext goes through the same on_chunk as any
 * socket's bytes. */
#ifndef SONDE_LIB_TLS_BPF_H
#define SONDE_LIB_TLS_BPF_H

#include "maps.bpf.h"

/* An SSL_read/SSL_write call in progress on a thread. */
struct sonde_tls_call {
	__u64 ssl;
	__u64 buf;
	__u64 out_len;  /* SSL_*_ex: where the byte count is written; 0 otherwise */
	__u64 entry_ns;
	__s32 fd;       /* the socket, once known; -1 before */
	__u8 direction;
	__u8 _pad[3];
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

/* Starts a call's record at the entry of SSL_read/SSL_write (and _ex). */
static __always_inline void tls_call_enter(__u64 ssl, __u64 buf, __u64 out_len, __u8 direction)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_selected(pid_tgid >> 32))
		return;
	struct sonde_tls_key key = { .pid = pid_tgid >> 32, .ssl = ssl };
	__s32 *known = bpf_map_lookup_elem(&tls_fds, &key);
	struct sonde_tls_call call = {
		.ssl = ssl,
		.buf = buf,
		.out_len = out_len,
		.entry_ns = bpf_ktime_get_ns(),
		.fd = known ? *known : -1,
		.direction = direction,
	};
	if (bpf_map_update_elem(&tls_calls, &pid_tgid, &call, BPF_ANY))
		count_drop(SONDE_DROP_THREAD_TABLE_FULL);
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
