/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Whether bytes look like the start or the end of an HTTP/1 head: the only
 * protocol knowledge the kernel side has. It decides which chunks start a
 * message and when a head is over; parsing is userspace's. */
#ifndef SONDE_LIB_HTTP1_DETECT_BPF_H
#define SONDE_LIB_HTTP1_DETECT_BPF_H

#include "maps.bpf.h"

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

#endif
