/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A connection's message boundaries, fed one chunk of data at a time by
 * whichever program saw it move (the syscall tracepoints, or the OpenSSL
 * uprobes with the plaintext of a TLS connection): message starts and
 * their first bytes, request heads followed past the capture, short starts
 * held back, response tails. */
#ifndef SONDE_LIB_CONN_STATE_BPF_H
#define SONDE_LIB_CONN_STATE_BPF_H

#include "maps.bpf.h"
#include "http1_detect.bpf.h"
#include "sock.bpf.h"
#include "tls.bpf.h"

enum io_kind { IO_BUF = 0, IO_IOV = 1, IO_MSG = 2, IO_SENDFILE = 3 };

/* Where a hook saw data move: the one input of on_chunk, whatever program
 * fills it. */
struct io_args {
	__u64 ptr;   /* buffer, iovec array or msghdr */
	__u64 count; /* buffer length or iovec count */
	__s32 fd;
	__u8 kind;   /* enum io_kind */
	__u8 direction;
	__u8 from_tls; /* plaintext of a TLS call, not the socket's bytes */
	__u8 _pad;
};

/* A msghdr's iovec array and count, which struct user_msghdr keeps side by
 * side: read alone, they take 16 bytes of the stack instead of its 56. */
struct msg_iov_ref {
	__u64 iov;
	__u64 count;
};

static __always_inline int read_msg_iov(__u64 msghdr, struct msg_iov_ref *out)
{
	_Static_assert(__builtin_offsetof(struct user_msghdr, msg_iovlen) ==
			       __builtin_offsetof(struct user_msghdr, msg_iov) + sizeof(__u64),
		       "msg_iov and msg_iovlen are adjacent");
	return bpf_probe_read_user(out, sizeof(*out), (void *)(msghdr + __builtin_offsetof(struct user_msghdr, msg_iov)));
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
		struct msg_iov_ref msg = {};
		if (read_msg_iov(a->ptr, &msg))
			return -1;
		iov_ptr = msg.iov;
		iov_count = msg.count;
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

#include "http2_frames.bpf.h"

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
	__u8 protocol;     /* enum sonde_protocol of the connection */
	__u8 source;       /* enum sonde_source of the connection */
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
	f->protocol = c->protocol;
	f->source = conn_source(c);
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
	fill_header_of(&ev->hdr, SONDE_EV_MSG_CONTINUE, f->pid_tgid, f->fd, f->role_hint, f->generation, f->msg_seq,
		       f->protocol, f->source, f->now_ns);
	ev->hdr.direction = f->direction;
	ev->hdr.msg_class = f->msg_class;
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
	/* Only a request a process sends is a call made while serving
	 * something; a response's cause would go unread, and looking it up
	 * costs every server response a hash lookup in the thread table. */
	if (a->direction == SONDE_DIR_EGRESS && msg_class == SONDE_CLASS_HTTP1_REQUEST)
		set_cause(&ev->hdr, pid_tgid);
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
	__u32 zero = 0;
	struct sonde_conn_state *fresh = bpf_map_lookup_elem(&conn_state_scratch, &zero);
	if (!fresh)
		return NULL;
	__builtin_memset(fresh, 0, sizeof(*fresh));
	fresh->sock_addr = (__u64)sk;
	fresh->role_hint = role_hint;
	fresh->generation = __sync_fetch_and_add(&next_generation, 1);
	if (sk && sonde_sock_is_tcp(sk))
		sonde_read_tuple(sk, &fresh->tuple);
	else if (!sk && sonde_fd_is_file_or_device(key->fd))
		fresh->flags = SONDE_CONN_IGNORED | SONDE_CONN_NOT_TCP | SONDE_CONN_READ_INLINE;
	else
		fresh->flags = SONDE_CONN_IGNORED | SONDE_CONN_NOT_TCP;
	if (bpf_map_update_elem(&conn_states, key, fresh, BPF_ANY)) {
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
			struct msg_iov_ref msg = {};
			if (read_msg_iov(a->ptr, &msg))
				goto none;
			iov_ptr = msg.iov;
			iov_count = msg.count;
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
 * NULL: it is then read here, only for connections that are followed. `c`
 * is the connection's state when the caller already looked it up, else
 * NULL (looked up, or created, here). `at_ns` dates the chunk when it is
 * not now (an SSL_write's entry), else 0. A socket chunk of a TLS
 * connection is ciphertext: it only tells the thread's TLS call its fd. */
static __always_inline void on_chunk(const struct io_args *a, const struct user_chunk *resolved,
				     struct sonde_conn_state *c, __u64 pid_tgid, __u64 chunk_bytes,
				     bool account_bytes, __u64 at_ns)
{
	struct sonde_conn_key key = { .pid = pid_tgid >> 32, .fd = a->fd };
	if (!c)
		c = bpf_map_lookup_elem(&conn_states, &key);
	__u64 now_ns = at_ns ? at_ns : bpf_ktime_get_ns();

	if (!c) {
		c = new_conn_state(&key, sonde_sock_from_fd(a->fd), SONDE_ROLE_UNKNOWN);
		if (!c) {
			if (a->direction == SONDE_DIR_INGRESS)
				note_thread_read(pid_tgid, SONDE_NO_CAUSE, 0, -1);
			return;
		}
	}
	if (a->from_tls) {
		if (!tls_adopt(c))
			return;
	} else if (tls_ciphertext(c, a->fd, pid_tgid, a->direction)) {
		if (a->direction == SONDE_DIR_INGRESS)
			note_thread_read(pid_tgid, a->fd, c->generation, a->fd);
		return;
	}
	if (a->direction == SONDE_DIR_INGRESS && !(c->flags & SONDE_CONN_READ_INLINE))
		note_thread_read(pid_tgid, (c->flags & SONDE_CONN_IGNORED) ? SONDE_NO_CAUSE : a->fd,
				 (c->flags & SONDE_CONN_IGNORED) ? 0 : c->generation,
				 (c->flags & SONDE_CONN_NOT_TCP) ? -1 : a->fd);
	if (c->flags & SONDE_CONN_IGNORED)
		return;
	if (a->direction == SONDE_DIR_EGRESS)
		c->write_start_ns = now_ns;
	if (c->protocol == SONDE_PROTO_HTTP2) {
		/* Frames, not messages: reads are walked here, writes at exit
		 * (where the byte count says how much really went). */
		if (account_bytes)
			h2_walk(c, a, pid_tgid, chunk_bytes, now_ns);
		return;
	}

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
	if (msg_class == SONDE_CLASS_UNKNOWN && !(c->flags & SONDE_CONN_SYNCED) && !prefix_bytes &&
	    h2_chunk_starts_with_frames(uc.base, uc.len < chunk_bytes ? uc.len : chunk_bytes))
		msg_class = SONDE_CLASS_HTTP2_FRAMES;
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
		/* h2c: a preface after HTTP/1 (Upgrade: h2c, 101). */
		bool upgraded = c->protocol == SONDE_PROTO_HTTP1;
		if (msg_class != SONDE_CLASS_UNKNOWN) {
			c->flags |= SONDE_CONN_SYNCED;
			bool h2 = msg_class == SONDE_CLASS_HTTP2_PREFACE || msg_class == SONDE_CLASS_HTTP2_FRAMES;
			c->protocol = h2 ? SONDE_PROTO_HTTP2 : SONDE_PROTO_HTTP1;
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
			if (c->protocol == SONDE_PROTO_HTTP2) {
				h2_start(c, a->direction, msg_class == SONDE_CLASS_HTTP2_PREFACE,
					 c->role_hint == SONDE_ROLE_UNKNOWN, prefix_bytes, upgraded);
				if (account_bytes)
					h2_walk(c, a, pid_tgid, chunk_bytes, now_ns);
				return;
			}
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

#endif
