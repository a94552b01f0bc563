/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Wire structs shared by bpf/sock_trace.bpf.c (producer) and native/src/core
 * (consumer). Every struct is laid out by hand with explicit padding;
 * native/src/core/layout_check.cc compiles them with -Wpadded and
 * static_asserts their sizes, so a change on one side cannot go unseen.
 *
 * Byte order: host (little-endian on every machine we build for), except
 * addresses, which stay in network order as the kernel stores them.
 */
#ifndef SONDE_SHARED_EVENTS_H
#define SONDE_SHARED_EVENTS_H

#ifdef __BPF__
/* vmlinux.h already defines the kernel's __u8 … __u64 */
#else
#include <linux/types.h>
#endif

/* Largest payload prefix a message-start event can carry. The runtime value
 * (rodata payload_capture_bytes) may be lower, never higher. */
#define SONDE_MAX_PAYLOAD_BYTES 4096

/* A request head is followed past the first capture, in continuation events,
 * up to this many bytes in all: Node refuses heads over 16 KiB, nginx's
 * default large_client_header_buffers hold 8 KiB per line. */
#define SONDE_MAX_HEAD_BYTES 16384

/* The last bytes of a response's latest chunk, kept in the connection's
 * state: enough for the terminating chunk of a chunked body with a short
 * trailer ("\r\n0\r\nX-T: 1\r\n\r\n" is 16). */
#define SONDE_TAIL_BYTES 16

/* HTTP/2 connections are walked frame by frame in the kernel. Each frame
 * travels as its 9-byte header, followed by its payload except for DATA
 * frames, whose payload never leaves the kernel. Of any other frame, at
 * most SONDE_H2_COPY_BOUND payload bytes are copied (the protocol's default
 * SETTINGS_MAX_FRAME_SIZE): a header block frame longer than that reaches
 * userspace cut, and is counted as truncated there. An event carries at
 * most SONDE_H2_EVENT_BYTES; a syscall with more gives several events. */
#define SONDE_H2_COPY_BOUND 16384
#define SONDE_H2_EVENT_BYTES 16384
/* Walk steps per syscall (a frame header, a copy of up to 4 KiB, a skip, or
 * the next iovec): about 2000 frames. A syscall with more loses the walk. */
#define SONDE_H2_MAX_STEPS 4096

/* Event kinds: the first byte of every ring-buffer record.
 * Requires update in native/src/core/ConnTracker.cc on change. */
enum sonde_event_kind {
	SONDE_EV_MSG_START = 1,    /* first chunk of a message in one direction */
	SONDE_EV_CLOSE = 2,        /* close() of a tracked connection */
	SONDE_EV_SELF_CONNECT = 3, /* sonde's own outgoing connection (exporters) */
	SONDE_EV_PROCESS_EXIT = 4, /* a selected process exited */
	SONDE_EV_MSG_CONTINUE = 5, /* more of a request head than the start carried */
	SONDE_EV_H2_FRAMES = 6,    /* an HTTP/2 connection's frames, DATA payload left out */
	SONDE_EV_CONNECT = 7,      /* a selected process's connect() on a TCP socket */
};

/* cause_fd of an event header when the thread's latest read was not from a
 * connection the kernel follows (a pipe, an eventfd, a database socket), or
 * when no read of the thread has been seen. */
#define SONDE_NO_CAUSE (-1)

enum sonde_direction {
	SONDE_DIR_NONE = 0,
	SONDE_DIR_INGRESS = 1, /* read by the traced process */
	SONDE_DIR_EGRESS = 2,  /* written by the traced process */
};

/* What the first bytes of a message look like. Kernel-side inference only
 * decides whether a connection is worth following; parsing is userspace's. */
enum sonde_msg_class {
	SONDE_CLASS_UNKNOWN = 0,
	SONDE_CLASS_HTTP1_REQUEST = 1,
	SONDE_CLASS_HTTP1_RESPONSE = 2,
	SONDE_CLASS_HTTP2_PREFACE = 3,
	SONDE_CLASS_HTTP2_FRAMES = 4, /* HTTP/2 frames on a connection seen mid-life */
};

/* Where an event's bytes were seen. Requires update in JS_layout and
 * test/native/fakeEvents.ts on change. */
enum sonde_source {
	SONDE_SOURCE_SOCKET = 1, /* syscalls on the socket */
	SONDE_SOURCE_TLS = 2,    /* a TLS library's plaintext (OpenSSL uprobes) */
};

/* The protocol the connection was recognised as, from its message starts. */
enum sonde_protocol {
	SONDE_PROTO_UNKNOWN = 0,
	SONDE_PROTO_HTTP1 = 1,
	SONDE_PROTO_HTTP2 = 2, /* by its client preface, or its frame headers */
};

/* Values of the traced_pids map. */
enum sonde_pid_selection {
	SONDE_PID_SELECTED = 1,
	SONDE_PID_SELECTED_WITH_DESCENDANTS = 2, /* and every process it forks */
};

/* Indexes of the process_counts array, host-wide counts since attach that
 * discovery reads before a scan of /proc: while one stays the same, what
 * it counts has not happened since the previous scan. */
enum sonde_process_count {
	SONDE_COUNT_EXECS = 0,
	/* a process forked, exec'd, exited or reaped: what can change the
	 * list of processes in /proc, or a process's parent or executable */
	SONDE_COUNT_PROCESS_CHANGES = 1,
	SONDE_COUNT__MAX = 2,
};

/* How the kernel learnt which end of the connection the process is. */
enum sonde_role_hint {
	SONDE_ROLE_UNKNOWN = 0, /* first seen mid-life: userspace infers it */
	SONDE_ROLE_SERVER = 1,  /* seen in accept()/accept4() */
	SONDE_ROLE_CLIENT = 2,  /* seen in connect() */
};

/* Indexes of the per-CPU drop_counters array. Requires update in
 * src/native/binding.ts (KERNEL_DROP_REASONS) on change. */
enum sonde_kernel_drop {
	SONDE_DROP_RINGBUF_FULL = 0,   /* bpf_ringbuf_output failed */
	SONDE_DROP_CONN_TABLE_FULL = 1,/* conn_states update failed */
	SONDE_DROP_NOT_SYNCED = 2,     /* connection given up: never looked like HTTP */
	SONDE_DROP_THREAD_TABLE_FULL = 3, /* thread_last_read update failed */
	/* TLS plaintext whose socket no syscall of its SSL* has shown yet */
	SONDE_DROP_TLS_NO_SOCKET = 4,
	SONDE_DROP__COUNT = 5,
};

/* Addresses are always 16 bytes: IPv4 is stored v4-mapped (::ffff:a.b.c.d)
 * so that a client on AF_INET and a server listening on AF_INET6 (Node's
 * default) produce comparable tuples. */
struct sonde_tuple {
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;  /* host order */
	__u16 remote_port; /* host order */
	__u16 family;      /* AF_INET or AF_INET6 of the socket itself */
	__u16 _pad;
};

struct sonde_event_header {
	__u8 kind;        /* enum sonde_event_kind */
	__u8 direction;   /* enum sonde_direction (MSG_START) */
	__u8 msg_class;   /* enum sonde_msg_class (MSG_START) */
	__u8 role_hint;   /* enum sonde_role_hint */
	__u32 pid;        /* tgid */
	__u32 tid;
	__s32 fd;
	__u32 generation; /* distinguishes successive connections on one fd */
	__u32 msg_seq;    /* per connection, +1 per message start: gaps = loss */
	__u64 timestamp_ns; /* CLOCK_MONOTONIC */
	__u8 source;      /* enum sonde_source */
	__u8 protocol;    /* enum sonde_protocol, as known so far */
	__u8 _pad[2];
	/* Egress HTTP/1 request starts, HTTP/2 egress frames and connects:
	 * the connection this thread last read from before the event (fd and
	 * generation), or SONDE_NO_CAUSE (always, on every other event). On an
	 * event loop the code that runs after a read, and the calls it makes,
	 * serve that connection's request. */
	__s32 cause_fd;
	__u32 cause_generation;
	__u32 _pad2;
};

/* The message that just ended on this connection (the one before msg_seq). */
struct sonde_prev_message {
	__u64 last_chunk_ns; /* end of its last read/write syscall */
	__u64 total_bytes;
	__u32 seq;           /* 0 when there was none */
	__u8 direction;
	__u8 _pad[3];
};

struct sonde_msg_start_event {
	struct sonde_event_header hdr;
	struct sonde_tuple tuple;
	struct sonde_prev_message prev;
	/* task comm: names a process that exits before userspace can read /proc */
	char comm[16];
	__u32 chunk_bytes;   /* size of the syscall that started the message */
	__u32 payload_bytes; /* bytes of payload[] that follow */
	__u8 payload[SONDE_MAX_PAYLOAD_BYTES];
};

/* connect() of a selected process: its header's cause says which request
 * the thread was serving when it opened the connection, for the first
 * request written on it (often a few loop turns later, once connected). */
struct sonde_connect_event {
	struct sonde_event_header hdr;
	struct sonde_tuple tuple;
};

struct sonde_close_event {
	struct sonde_event_header hdr;
	struct sonde_tuple tuple;
	struct sonde_prev_message last; /* the message open at close time */
};

/* The next bytes of the head of message hdr.msg_seq, in order: the rest of
 * a first chunk longer than the capture, or the following chunks of a head
 * that did not end in its first chunk (nginx reads 1 KiB at a time; a
 * client may send "GE" and the rest later). */
struct sonde_msg_continue_event {
	struct sonde_event_header hdr;
	__u32 chunk_bytes;   /* size of the syscall these bytes come from */
	__u32 payload_bytes; /* bytes of payload[] that follow */
	__u8 payload[SONDE_MAX_PAYLOAD_BYTES];
};

/* Bits of sonde_h2_frames_event.flags. Requires update in
 * native/src/core/Http2Stitcher.cc on change. */
enum sonde_h2_frames_flags {
	/* The walk of this direction (re)starts at first_frame_offset: frames
	 * before it were never seen, so the reader starts afresh. */
	SONDE_H2_SYNC_START = 1,
	/* ... on a connection seen mid-life, or after a loss: the HPACK
	 * dynamic table holds entries inserted before. */
	SONDE_H2_MID_LIFE = 2,
	/* The walk lost the frame boundaries after these bytes (a frame header
	 * that breaks the protocol, an unreadable buffer, too many frames): the
	 * direction waits for a chunk that starts with plausible frames. */
	SONDE_H2_LOST = 4,
};

/* The frames one syscall moved in one direction of an HTTP/2 connection,
 * in order, DATA payload left out (see SONDE_H2_COPY_BOUND). Successive
 * events of a direction continue each other: a frame may begin in one and
 * end in the next. hdr.msg_seq counts these events per direction, from 1
 * (sonde_h2_walk.seq), so a gap shows a loss. */
struct sonde_h2_frames_event {
	struct sonde_event_header hdr;
	__u32 chunk_bytes;        /* bytes the syscall moved */
	__u32 payload_bytes;      /* bytes of payload[] that follow */
	__u16 first_frame_offset; /* where the first frame header in payload[] starts; 0xffff: none */
	__u8 flags;               /* enum sonde_h2_frames_flags */
	__u8 _pad[5];
	__u8 payload[SONDE_H2_EVENT_BYTES];
};

struct sonde_self_connect_event {
	struct sonde_event_header hdr;
	struct sonde_tuple tuple;
};

struct sonde_process_exit_event {
	struct sonde_event_header hdr;
};

/* Value of the conn_states map, keyed by struct sonde_conn_key. Userspace
 * reads it to close out a response that went quiet (no later event will
 * carry its end). */
struct sonde_conn_key {
	__u32 pid;
	__s32 fd;
};

/* Where the kernel's walk of one direction of an HTTP/2 connection is. */
enum sonde_h2_walk_state {
	SONDE_H2_WALK_OFF = 0,      /* not an HTTP/2 connection */
	SONDE_H2_WALK_UNSYNCED = 1, /* waiting for a chunk that starts with plausible frames */
	SONDE_H2_WALK_SYNCED = 2,
};

struct sonde_h2_walk {
	__u32 left;          /* payload bytes of the current frame still to pass */
	__u32 copy_left;     /* of those, bytes still to copy */
	__u8 state;          /* enum sonde_h2_walk_state */
	__u8 pending_flags;  /* SONDE_H2_SYNC_START/MID_LIFE for the next event */
	__u8 hdr_have;       /* bytes of a frame header split across syscalls */
	__u8 hdr[9];
	/* Frames events sent for this direction: their hdr.msg_seq. One count
	 * per direction, because a connection's reads and writes are walked
	 * on different threads at once by some runtimes (Go, gRPC C core). */
	__u32 seq;
};

enum sonde_conn_flags {
	SONDE_CONN_IGNORED = 1, /* not TCP, or never looked like HTTP */
	SONDE_CONN_SYNCED = 2,  /* an HTTP message start was seen */
	/* Ignored, and its reads do not change what the reading thread serves
	 * (a regular file or a device: thread_last_read). */
	SONDE_CONN_READ_INLINE = 4,
	/* Its bytes come from a TLS library's calls (source TLS): what the
	 * syscalls move on it is ciphertext, never parsed. */
	SONDE_CONN_TLS = 8,
	/* Not a TCP socket (a Unix socket, a pipe, a file): never a TLS
	 * connection's socket either. */
	SONDE_CONN_NOT_TCP = 16,
};

struct sonde_conn_state {
	__u64 sock_addr;   /* struct sock *: identity while the fd lives */
	__u64 cur_start_ns;
	__u64 cur_last_ns;
	__u64 cur_bytes;
	__u64 short_start_ns; /* when the held-back short chunk was seen */
	/* Entry of the write in flight: its exit dates what it sent (HTTP/2
	 * frames, an HTTP/1 message's last chunk) here, before the bytes can
	 * reach a peer. */
	__u64 write_start_ns;
	struct sonde_tuple tuple;
	__u32 generation;
	__u32 msg_seq;
	__u32 head_left_bytes; /* request-head bytes later chunks may still add */
	__u8 role_hint;
	__u8 cur_direction;
	__u8 flags;
	__u8 unknown_starts; /* message starts that did not look like HTTP */
	__u8 cur_class;      /* enum sonde_msg_class of the current message */
	__u8 tail_bytes;     /* valid bytes at the start of tail[] */
	/* A chunk too short to classify ("GE") that may start a message: held
	 * back until the next chunk in the same direction tells. */
	__u8 short_bytes;
	__u8 short_direction;
	__u8 short_prefix[8];
	/* The last tail_bytes bytes of the current response's latest chunk:
	 * userspace recognises the end of a chunked body from them. */
	__u8 tail[SONDE_TAIL_BYTES];
	__u8 protocol;       /* enum sonde_protocol */
	__u8 _pad[3];
	/* The size of an SSL_write that started its message at entry and then
	 * failed (WANT_READ/WANT_WRITE), 0 if none: OpenSSL retries it with the
	 * same arguments, and the retry must not start the message again. */
	__u32 tls_unsent_write;
	__u32 _pad2;
	/* HTTP/2: the frame walk of each direction, [direction - 1]. */
	struct sonde_h2_walk h2[2];
};

#define SONDE_MSG_START_HEADER_BYTES (sizeof(struct sonde_msg_start_event) - SONDE_MAX_PAYLOAD_BYTES)
#define SONDE_MSG_CONTINUE_HEADER_BYTES (sizeof(struct sonde_msg_continue_event) - SONDE_MAX_PAYLOAD_BYTES)
#define SONDE_H2_FRAMES_HEADER_BYTES (sizeof(struct sonde_h2_frames_event) - SONDE_H2_EVENT_BYTES)

#endif
