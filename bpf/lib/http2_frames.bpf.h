/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP/2 connections, frame by frame: each direction's bytes are walked as
 * frames (RFC 9113 §4.1), across syscalls and iovecs, and sent to userspace
 * as frame headers plus the payload of every frame but DATA (see
 * SONDE_H2_COPY_BOUND in shared/events.h). DATA frames cost a header and a
 * skip: a body never leaves the kernel, and an HPACK decoder in userspace
 * still sees every header block whole.
 *
 * A connection is HTTP/2 from its client preface, or, when sonde joined it
 * mid-life, from a chunk that starts with frame headers that each pass the
 * checks a receiver makes (h2_header_plausible); never from one byte. */
#ifndef SONDE_LIB_HTTP2_FRAMES_BPF_H
#define SONDE_LIB_HTTP2_FRAMES_BPF_H

#include "maps.bpf.h"
#include "http1_detect.bpf.h"

#define H2_FRAME_HEADER_BYTES 9
#define H2_TYPE_DATA 0x0
#define H2_TYPE_HEADERS 0x1
#define H2_TYPE_PRIORITY 0x2
#define H2_TYPE_RST_STREAM 0x3
#define H2_TYPE_SETTINGS 0x4
#define H2_TYPE_PUSH_PROMISE 0x5
#define H2_TYPE_PING 0x6
#define H2_TYPE_GOAWAY 0x7
#define H2_TYPE_WINDOW_UPDATE 0x8
#define H2_TYPE_CONTINUATION 0x9
#define H2_FLAG_END_HEADERS 0x4
#define H2_CLIENT_PREFACE_BYTES 24
/* bpf_probe_read_user sizes must have a bound the verifier sees. */
#define H2_COPY_PIECE 4096

/* The event, and room for one piece past its logical end: the verifier
 * bounds a copy's offset and size separately. */
struct h2_frames_scratch_value {
	struct sonde_h2_frames_event ev;
	__u8 spill[H2_COPY_PIECE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2_frames_scratch_value);
} h2_frames_scratch SEC(".maps");

/* Whether a frame header passes what a receiver checks before reading the
 * payload. `strict` (recognising a connection seen mid-life) also wants a
 * known type, only the flags that type defines, the reserved bit clear and
 * a length within the default maximum frame size; a walk already in step
 * allows unknown types (§5.5) and raised frame sizes. */
static __always_inline bool h2_header_plausible(const __u8 *h, bool strict)
{
	/* flags each type defines, by type (RFC 9113 §6) */
	const __u8 defined[10] = { 0x09, 0x2d, 0x00, 0x00, 0x01, 0x0c, 0x01, 0x00, 0x00, 0x04 };
	__u32 length = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	__u8 type = h[3], flags = h[4];
	__u32 sid = (((__u32)h[5] & 0x7f) << 24) | ((__u32)h[6] << 16) | ((__u32)h[7] << 8) | h[8];
	if (type > H2_TYPE_CONTINUATION)
		return !strict;
	if (strict && ((flags & ~defined[type]) || (h[5] & 0x80) || length > 16384))
		return false;
	switch (type) {
	case H2_TYPE_DATA:
	case H2_TYPE_HEADERS:
	case H2_TYPE_CONTINUATION:
	case H2_TYPE_PUSH_PROMISE:
		return sid != 0;
	case H2_TYPE_PRIORITY:
		return sid != 0 && length == 5;
	case H2_TYPE_RST_STREAM:
		return sid != 0 && length == 4;
	case H2_TYPE_WINDOW_UPDATE:
		return length == 4;
	case H2_TYPE_SETTINGS:
		return sid == 0 && length % 6 == 0;
	case H2_TYPE_PING:
		return sid == 0 && length == 8;
	case H2_TYPE_GOAWAY:
		return sid == 0 && length >= 8;
	}
	return false;
}

/* A chunk of a connection sonde joined mid-life starts with a frame: its
 * first frame header passes the strict checks, and so does the next one
 * when the chunk reaches it. A CONTINUATION cannot open a chunk: it needs
 * the header block before it. */
__noinline int h2_chunk_starts_with_frames(__u64 base, __u64 len)
{
	__u8 h[H2_FRAME_HEADER_BYTES];
	if (len < H2_FRAME_HEADER_BYTES || bpf_probe_read_user(h, sizeof(h), (void *)base))
		return 0;
	if (!h2_header_plausible(h, true) || h[3] == H2_TYPE_CONTINUATION)
		return 0;
	__u64 next = H2_FRAME_HEADER_BYTES + (((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2]);
	if (next + H2_FRAME_HEADER_BYTES > len)
		return 1;
	bool block_open = (h[3] == H2_TYPE_HEADERS || h[3] == H2_TYPE_PUSH_PROMISE) && !(h[4] & H2_FLAG_END_HEADERS);
	if (bpf_probe_read_user(h, sizeof(h), (void *)(base + next)))
		return 0;
	if (!h2_header_plausible(h, true) || block_open != (h[3] == H2_TYPE_CONTINUATION))
		return 0;
	return 1;
}

#define H2_START_FRAMES 1
#define H2_START_PREFACE 2

/* How a chunk of a direction waiting for its first frame starts: with
 * plausible frames (H2_START_FRAMES), with the client preface
 * (H2_START_PREFACE), or neither (0). */
static __always_inline int h2_chunk_start(__u64 base, __u64 len)
{
	__u8 p[8] = {};
	if (len >= H2_CLIENT_PREFACE_BYTES && !bpf_probe_read_user(p, sizeof(p), (void *)base) &&
	    classify(p, sizeof(p)) == SONDE_CLASS_HTTP2_PREFACE)
		return H2_START_PREFACE;
	return h2_chunk_starts_with_frames(base, len) ? H2_START_FRAMES : 0;
}

/* One syscall's walk of one direction: where its bytes are, the direction's
 * state (copied from the connection and back), and the event being filled. */
struct h2_walk_ctx {
	__u64 iov_ptr;    /* the iovec array, for readv/writev/sendmsg/recvmsg */
	__u64 iov_count;
	__u64 iov_next;
	__u64 seg_base;   /* the buffer being walked */
	__u64 seg_len;
	__u64 seg_pos;
	__u64 moved_left; /* bytes the syscall moved that are in no segment yet */
	__u64 pid_tgid;
	__u64 now_ns;
	__u64 chunk_bytes;
	__u32 left;
	__u32 copy_left;
	__u32 hdr_have;
	__u32 out;        /* payload bytes in the scratch event */
	__u32 generation;
	__u32 msg_seq;
	__s32 fd;
	__u16 first_off;
	__u8 ev_flags;
	__u8 direction;
	__u8 role_hint;
	__u8 lost;
	__u8 done;
	__u8 source;      /* enum sonde_source of the connection */
	__u8 hdr[32];     /* the frame header being read; [0, 9) used */
};

/* The walk's context, off the stack for the reason h2_walk gives. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2_walk_ctx);
} h2_walk_scratch SEC(".maps");

/* Sends what the scratch event holds, if anything (global: verified once). */
__noinline int h2_flush(struct h2_walk_ctx *x)
{
	__u32 zero = 0;
	if (!x)
		return 0;
	struct sonde_h2_frames_event *ev = bpf_map_lookup_elem(&h2_frames_scratch, &zero);
	if (!ev || (x->out == 0 && !x->lost && !(x->ev_flags & SONDE_H2_SYNC_START)))
		return 0;
	x->msg_seq += 1;
	fill_header_of(&ev->hdr, SONDE_EV_H2_FRAMES, x->pid_tgid, x->fd, x->role_hint, x->generation, x->msg_seq,
		       SONDE_PROTO_HTTP2, x->source, x->now_ns);
	ev->hdr.direction = x->direction;
	if (x->direction == SONDE_DIR_EGRESS)
		set_cause(&ev->hdr, x->pid_tgid);
	ev->chunk_bytes = x->chunk_bytes > 0xffffffff ? 0xffffffff : x->chunk_bytes;
	__u32 n = x->out;
	if (n > SONDE_H2_EVENT_BYTES)
		n = SONDE_H2_EVENT_BYTES;
	ev->payload_bytes = n;
	ev->first_frame_offset = x->first_off;
	ev->flags = x->ev_flags | (x->lost ? SONDE_H2_LOST : 0);
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	if (bpf_ringbuf_output(&events, ev, SONDE_H2_FRAMES_HEADER_BYTES + n, ringbuf_flags()))
		count_drop(SONDE_DROP_RINGBUF_FULL);
	x->out = 0;
	x->first_off = 0xffff;
	x->ev_flags = 0;
	return 0;
}

/* One step of the walk: the next iovec, a frame header (or the part of one
 * this buffer holds), a piece of a payload to copy, or a payload to skip.
 * Returns 1 when the walk is over (done, or lost). */
__noinline int h2_step(struct h2_walk_ctx *x)
{
	__u32 zero = 0;
	if (!x)
		return 1;
	if (x->seg_pos >= x->seg_len) {
		if (x->moved_left == 0 || x->iov_next >= x->iov_count) {
			x->done = 1;
			return 1;
		}
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(x->iov_ptr + x->iov_next * sizeof(iov)))) {
			x->lost = 1;
			return 1;
		}
		x->iov_next += 1;
		x->seg_base = (__u64)iov.iov_base;
		x->seg_len = iov.iov_len < x->moved_left ? iov.iov_len : x->moved_left;
		x->moved_left -= x->seg_len;
		x->seg_pos = 0;
		return 0;
	}
	__u64 avail = x->seg_len - x->seg_pos;
	if (x->left) {
		__u64 n = x->left < avail ? x->left : avail;
		if (x->copy_left) {
			if (x->out >= SONDE_H2_EVENT_BYTES)
				h2_flush(x);
			__u64 m = n;
			if (m > x->copy_left)
				m = x->copy_left;
			if (m > SONDE_H2_EVENT_BYTES - x->out)
				m = SONDE_H2_EVENT_BYTES - x->out;
			if (m > H2_COPY_PIECE)
				m = H2_COPY_PIECE;
			struct sonde_h2_frames_event *ev = bpf_map_lookup_elem(&h2_frames_scratch, &zero);
			__u32 off = x->out & (SONDE_H2_EVENT_BYTES - 1);
			if (!ev || m == 0 || bpf_probe_read_user(ev->payload + off, m, (void *)(x->seg_base + x->seg_pos))) {
				x->lost = 1;
				return 1;
			}
			x->out += m;
			x->copy_left -= m;
			n = m;
		}
		x->left -= n;
		x->seg_pos += n;
		return 0;
	}

	__u32 have = x->hdr_have & 15;
	__u64 n = H2_FRAME_HEADER_BYTES > have ? H2_FRAME_HEADER_BYTES - have : 0;
	if (n > avail)
		n = avail;
	if (n == 0 || n > H2_FRAME_HEADER_BYTES ||
	    bpf_probe_read_user(x->hdr + have, n, (void *)(x->seg_base + x->seg_pos))) {
		x->lost = 1;
		return 1;
	}
	x->seg_pos += n;
	x->hdr_have = have + n;
	if (x->hdr_have < H2_FRAME_HEADER_BYTES)
		return 0;
	x->hdr_have = 0;
	if (!h2_header_plausible(x->hdr, false)) {
		x->lost = 1;
		return 1;
	}
	if (x->out > SONDE_H2_EVENT_BYTES - H2_FRAME_HEADER_BYTES)
		h2_flush(x);
	struct sonde_h2_frames_event *ev = bpf_map_lookup_elem(&h2_frames_scratch, &zero);
	if (!ev) {
		x->lost = 1;
		return 1;
	}
	__u32 off = x->out & (SONDE_H2_EVENT_BYTES - 1);
	__builtin_memcpy(ev->payload + off, x->hdr, H2_FRAME_HEADER_BYTES);
	if (x->first_off == 0xffff)
		x->first_off = off;
	x->out = off + H2_FRAME_HEADER_BYTES;
	__u32 length = ((__u32)x->hdr[0] << 16) | ((__u32)x->hdr[1] << 8) | x->hdr[2];
	x->left = length;
	x->copy_left = x->hdr[3] == H2_TYPE_DATA ? 0 : (length < SONDE_H2_COPY_BOUND ? length : SONDE_H2_COPY_BOUND);
	return 0;
}

/* bpf_loop wants its context on the stack: it holds the walk's address. */
struct h2_walk_ref {
	struct h2_walk_ctx *x;
};

static long h2_step_cb(__u64 i, void *ctx)
{
	struct h2_walk_ref *ref = ctx;
	return h2_step(ref->x) ? 1 : 0;
}

/* Walks the `moved` bytes of one syscall in direction a->direction of an
 * HTTP/2 connection, and sends what it found. Global, so that its walk
 * context has a frame of its own: uprobes get no private stack on some
 * kernel builds, and a uprobe's frame and those of the calls it makes must
 * then fit 512 bytes together. */
__noinline int h2_walk(struct sonde_conn_state *c, const struct io_args *a, __u64 pid_tgid, __u64 moved,
		       __u64 now_ns)
{
	if (!c || !a)
		return 0;
	__u32 d = (a->direction - 1) & 1;
	struct sonde_h2_walk *w = &c->h2[d];
	if (w->state == SONDE_H2_WALK_OFF || moved == 0)
		return 0;

	__u32 zero = 0;
	struct h2_walk_ctx *x = bpf_map_lookup_elem(&h2_walk_scratch, &zero);
	if (!x)
		return 0;
	__builtin_memset(x, 0, sizeof(*x));
	x->pid_tgid = pid_tgid;
	x->now_ns = now_ns;
	x->chunk_bytes = moved;
	x->fd = a->fd;
	x->generation = c->generation;
	x->msg_seq = w->seq;
	x->direction = a->direction;
	x->role_hint = c->role_hint;
	x->source = conn_source(c);
	x->first_off = 0xffff;

	if (a->kind == IO_SENDFILE) {
		/* A file sent as DATA payload after its frame header was written:
		 * nothing to read, only bytes to pass. */
		if (w->state == SONDE_H2_WALK_SYNCED && w->copy_left == 0 && w->left >= moved) {
			w->left -= moved;
			return 0;
		}
		x->lost = 1;
		goto out;
	}

	if (a->kind == IO_BUF) {
		x->seg_base = a->ptr;
		x->seg_len = moved;
	} else {
		x->iov_ptr = a->ptr;
		x->iov_count = a->count;
		if (a->kind == IO_MSG) {
			struct msg_iov_ref msg = {};
			if (read_msg_iov(a->ptr, &msg)) {
				x->lost = 1;
				goto out;
			}
			x->iov_ptr = msg.iov;
			x->iov_count = msg.count;
		}
		x->moved_left = moved;
	}

	if (w->state == SONDE_H2_WALK_UNSYNCED) {
		/* Only a syscall that starts with frames, or with the client
		 * preface, can put the walk in step. */
		struct user_chunk uc = resolve_chunk(a);
		__u64 first = uc.len < moved ? uc.len : moved;
		int start = uc.len == 0 ? 0 : h2_chunk_start(uc.base, first);
		if (!start)
			return 0;
		w->state = SONDE_H2_WALK_SYNCED;
		w->left = start == H2_START_PREFACE ? H2_CLIENT_PREFACE_BYTES : 0;
		w->copy_left = 0;
		w->hdr_have = 0;
		w->pending_flags = SONDE_H2_SYNC_START | (start == H2_START_FRAMES ? SONDE_H2_MID_LIFE : 0);
	}
	x->left = w->left;
	x->copy_left = w->copy_left;
	x->hdr_have = w->hdr_have > H2_FRAME_HEADER_BYTES - 1 ? 0 : w->hdr_have;
	__builtin_memcpy(x->hdr, w->hdr, H2_FRAME_HEADER_BYTES);
	x->ev_flags = w->pending_flags;
	if (x->ev_flags & SONDE_H2_SYNC_START)
		x->first_off = 0;

	struct h2_walk_ref ref = { .x = x };
	bpf_loop(SONDE_H2_MAX_STEPS, h2_step_cb, &ref, 0);
	if (!x->done)
		x->lost = 1;

out:
	h2_flush(x);
	w->seq = x->msg_seq;
	if (x->lost) {
		/* Wait for a syscall that starts with frames; the reader and
		 * decoder in userspace start again from there. */
		w->state = SONDE_H2_WALK_UNSYNCED;
		w->pending_flags = 0;
		return 0;
	}
	w->left = x->left;
	w->copy_left = x->copy_left;
	w->hdr_have = x->hdr_have;
	__builtin_memcpy(w->hdr, x->hdr, H2_FRAME_HEADER_BYTES);
	w->pending_flags = 0;
	return 0;
}

/* The connection just turned out to be HTTP/2, in `direction`: by its
 * client preface (both directions start in step, the preface itself passed
 * over; after an h2c upgrade only this one), or by frames. Frames on a
 * connection whose accept or connect was seen come from its start (a server
 * writes its SETTINGS before it reads the preface); on one sonde joined
 * mid-life, the HPACK tables began before us. A direction not in step waits
 * for a chunk that starts with frames or with the preface. Each direction
 * is set field by field: a whole-struct store into the map value here was
 * missing from clang's output. */
static __always_inline void h2_start(struct sonde_conn_state *c, __u8 direction, bool by_preface, bool mid_life,
				     __u32 preface_held_back, bool upgraded)
{
	__u32 d = (direction - 1) & 1;
	/* A preface seen whole: its HPACK tables are fresh, whatever else
	 * was missed. */
	if (by_preface)
		mid_life = false;
	/* The preface bytes held back as a short chunk are not in this one. */
	__u32 preface_left = H2_CLIENT_PREFACE_BYTES - (preface_held_back & 7);
	for (__u32 i = 0; i < 2; i++) {
		struct sonde_h2_walk *w = &c->h2[i];
		bool own = i == d;
		/* After an h2c upgrade the server's first frames may already have
		 * been read with its 101: the other direction finds its place. */
		bool synced = own || (by_preface && !upgraded);
		w->seq = 0;
		w->left = by_preface && own ? preface_left : 0;
		w->copy_left = 0;
		w->hdr_have = 0;
		w->state = synced ? SONDE_H2_WALK_SYNCED : SONDE_H2_WALK_UNSYNCED;
		w->pending_flags = synced ? SONDE_H2_SYNC_START | (mid_life ? SONDE_H2_MID_LIFE : 0) : 0;
	}
}

#endif
