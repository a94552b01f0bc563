import * as path from 'node:path';
import { DEFAULT_PROC_ROOT, procfsListeningReader, type ListeningTcpReader } from './procfs';

/**
 * Listeners asked of the kernel over NETLINK_SOCK_DIAG (the addon's
 * listeningTcpSockets) instead of read from /proc/net/tcp and tcp6, whose
 * every read walks the whole established-connections hash: 1.2 ms a file
 * on these VMs, 2.4 ms of each --open-port scan once a second, where the
 * kernel's answer for the LISTEN state alone takes about 30 µs
 * (docs/design-notes.md, "Discovery").
 *
 * When the kernel cannot answer for sonde's own namespace (no inet_diag),
 * `onFallback` hears why once and /proc is read from then on. When it
 * cannot for another process's namespace (the process gone, or entering
 * its namespace refused), /proc is read for that one.
 */
export function kernelListeningReader(
  ask: (netnsPath?: string) => number[],
  options: { procRoot?: string; onFallback?: (error: unknown) => void } = {},
): ListeningTcpReader {
  const procRoot = options.procRoot ?? DEFAULT_PROC_ROOT;
  const procfs = procfsListeningReader(procRoot);
  let kernelAnswers = true;
  return (pid) => {
    if (kernelAnswers) {
      try {
        const pairs = ask(pid === undefined ? undefined : path.join(procRoot, String(pid), 'ns', 'net'));
        const listening = new Map<number, number>();
        for (let i = 0; i + 1 < pairs.length; i += 2) if (pairs[i] !== 0) listening.set(pairs[i], pairs[i + 1]);
        return listening;
      } catch (error) {
        if (pid === undefined) {
          kernelAnswers = false;
          options.onFallback?.(error);
        }
      }
    }
    return procfs(pid);
  };
}
