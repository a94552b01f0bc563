/**
 * The least a tracer of request and response boundaries can do in the
 * kernel, as a yardstick for sonde's programs: on the syscall tracepoints
 * sonde attaches, in the server's processes only, find the connection (a
 * hash keyed by process and fd, added on first sight) and, when the
 * direction of its bytes flips, reserve an event in a ring buffer, date it
 * and copy the message's first 64 bytes into it. Nothing else: no socket
 * walk, no classification, no byte counts, no response ends, no thread
 * table, no TLS, no trace context. The other tracepoints only check the
 * process, and the loader drains the ring every 100 ms.
 *
 * So a server traced by it pays the hooks, the lookups and the ring
 * writes any such tracer must make for each request; what sonde costs
 * above it is what sonde does beyond finding boundaries.
 */
import { compileProbe, holdProbe, sondeSyscallTracepoints } from './floorProbe';
import type { Tracked } from './proc';

export interface BoundaryProbe {
  object: string;
  loader: string;
  /** Programs in the object, one per tracepoint: the links a loader makes. */
  programs: number;
}

/** How each hooked syscall finds its bytes; the rest only check the process. */
const BOUNDARY_SITES: Record<string, { direction: 'in' | 'out'; bytes: 'buffer' | 'iovec' | 'none' }> = {
  sys_exit_read: { direction: 'in', bytes: 'buffer' },
  sys_exit_recvfrom: { direction: 'in', bytes: 'buffer' },
  sys_exit_readv: { direction: 'in', bytes: 'iovec' },
  sys_exit_recvmsg: { direction: 'in', bytes: 'none' },
  sys_enter_write: { direction: 'out', bytes: 'buffer' },
  sys_enter_sendto: { direction: 'out', bytes: 'buffer' },
  sys_enter_writev: { direction: 'out', bytes: 'iovec' },
  sys_enter_sendmsg: { direction: 'out', bytes: 'none' },
};

function programOf(tracepoint: string): string {
  const site = BOUNDARY_SITES[tracepoint];
  const head = `SEC("tracepoint/syscalls/${tracepoint}")\nint minimal_${tracepoint}`;
  if (!site) return `${head}(void *ctx) { selected(); return 0; }`;
  const direction = site.direction === 'in' ? 'IN' : 'OUT';
  if (site.direction === 'out') {
    return `${head}(struct trace_event_raw_sys_enter *ctx)
{
	boundary((int)ctx->args[0], ${site.bytes === 'none' ? '0' : '(const void *)ctx->args[1]'}, ${site.bytes === 'iovec' ? 1 : 0}, ${direction});
	return 0;
}`;
  }
  return `${head}(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret <= 0)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	boundary((int)PT_REGS_PARM1_SYSCALL(regs), ${site.bytes === 'none' ? '0' : '(const void *)PT_REGS_PARM2_SYSCALL(regs)'}, ${site.bytes === 'iovec' ? 1 : 0}, ${direction});
	return 0;
}`;
}

/** C source of the boundary tracer for `tracepoints`, selecting processes `tgids`. */
export function boundaryProbeSource(tracepoints: readonly string[], tgids: readonly number[]): string {
  const selected = tgids.length ? tgids.map((t) => `tgid == ${t}`).join(' || ') : '0';
  return `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum { IN = 1, OUT = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} directions SEC(".maps");

struct boundary_event {
	__u32 pid;
	__s32 fd;
	__u64 at_ns;
	__u8 direction;
	__u8 pad[7];
	char head[64];
};

static __always_inline int selected(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return ${selected};
}

static __always_inline void boundary(int fd, const void *bytes, int is_iovec, __u8 direction)
{
	if (!selected())
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = ((__u64)tgid << 32) | (__u32)fd;
	__u8 *last = bpf_map_lookup_elem(&directions, &key);
	if (!last)
		bpf_map_update_elem(&directions, &key, &direction, BPF_NOEXIST);
	else if (*last == direction)
		return;
	else
		*last = direction;
	struct boundary_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->pid = tgid;
	e->fd = fd;
	e->at_ns = bpf_ktime_get_ns();
	e->direction = direction;
	if (bytes && is_iovec) {
		struct iovec first = {};
		bpf_probe_read_user(&first, sizeof(first), bytes);
		bytes = first.iov_base;
	}
	if (bytes)
		bpf_probe_read_user(e->head, sizeof(e->head), bytes);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

${tracepoints.map(programOf).join('\n\n')}
`;
}

/** Compiles the boundary tracer for processes `tgids` into `dir`, with the loader that holds it attached and drains its ring. */
export async function buildBoundaryProbe(dir: string, tgids: readonly number[]): Promise<BoundaryProbe> {
  const tracepoints = sondeSyscallTracepoints();
  const { object, loader } = await compileProbe(dir, 'minimal', boundaryProbeSource(tracepoints, tgids));
  return { object, loader, programs: tracepoints.length };
}

/** Attaches the boundary tracer; it runs until stopBoundaryProbe. */
export function attachBoundaryProbe(probe: BoundaryProbe): Promise<Tracked> {
  return holdProbe('boundary-probe', probe, probe.programs);
}

/**
 * Stops the loader with SIGTERM, on which it drains the ring a last time
 * and says how many events it took in all: `events`, NaN if it did not say.
 */
export async function stopBoundaryProbe(loader: Tracked): Promise<{ events: number; exit: { code: number; killed: boolean } }> {
  const exit = await loader.stop('SIGTERM', 5000);
  return { events: Number(loader.stderr().match(/drained (\d+) events/)?.[1] ?? NaN), exit };
}
