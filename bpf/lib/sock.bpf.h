/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel-only helpers: from a file descriptor of the current task to its TCP
 * socket and 4-tuple, read with CO-RE so one object runs on any BTF kernel. */
#ifndef SONDE_LIB_SOCK_BPF_H
#define SONDE_LIB_SOCK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "../shared/events.h"

/* include/uapi/linux/stat.h and socket.h: macros, so not in vmlinux.h */
#define SONDE_S_IFMT 00170000
#define SONDE_S_IFSOCK 0140000
#define SONDE_S_IFREG 0100000
#define SONDE_S_IFBLK 0060000
#define SONDE_S_IFCHR 0020000
#define SONDE_AF_INET 2
#define SONDE_AF_INET6 10
#define SONDE_SOCK_STREAM 1
#define SONDE_IPPROTO_TCP 6

static __always_inline struct file *sonde_file_of_fd(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	struct file **fds;
	struct file *file = NULL;

	if (fd < 0 || (unsigned int)fd >= max_fds)
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

/* files -> fdt -> fd[fd] -> f_inode->i_mode must be a socket, then
 * private_data is its struct socket (net/socket.c sock_from_file). A
 * tracepoint program may not call bpf_get_socket_cookie, so the struct sock
 * address is what identifies the connection. */
static __always_inline struct sock *sonde_sock_from_fd(int fd)
{
	struct file *file = sonde_file_of_fd(fd);
	if (!file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & SONDE_S_IFMT) != SONDE_S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

/* A regular file or a device: what a program reads from one, it reads in
 * the middle of its own code (a config file, /dev/urandom); a pipe, an
 * eventfd or a socket is what an event loop wakes up for. */
static __always_inline bool sonde_fd_is_file_or_device(int fd)
{
	struct file *file = sonde_file_of_fd(fd);
	if (!file)
		return false;
	__u32 type = BPF_CORE_READ(file, f_inode, i_mode) & SONDE_S_IFMT;
	return type == SONDE_S_IFREG || type == SONDE_S_IFCHR || type == SONDE_S_IFBLK;
}

static __always_inline bool sonde_sock_is_tcp(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != SONDE_AF_INET && family != SONDE_AF_INET6)
		return false;
	return BPF_CORE_READ(sk, sk_type) == SONDE_SOCK_STREAM &&
	       BPF_CORE_READ(sk, sk_protocol) == SONDE_IPPROTO_TCP;
}

static __always_inline void sonde_v4_mapped(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr, 4);
}

static __always_inline void sonde_read_tuple(struct sock *sk, struct sonde_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->family = family;
	t->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->_pad = 0;
	if (family == SONDE_AF_INET) {
		sonde_v4_mapped(t->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		sonde_v4_mapped(t->remote_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&t->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

#endif
