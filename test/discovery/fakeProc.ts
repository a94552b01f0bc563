import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface FakeProcess {
  pid: number;
  /** Defaults to 1, as for a daemon or an orphan. */
  ppid?: number;
  startTimeTicks: number;
  comm: string;
  /** Target of the exe link; omitted for kernel-thread-like entries. */
  exe?: string;
  cmdline: string[];
  environ?: Record<string, string>;
  cwd?: string;
  socketInodes?: number[];
}

export const TCP_HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

/** One /proc/net/tcp row; ports and states as the kernel prints them (hex). */
export function tcpRow(slot: number, localHex: string, remoteHex: string, state: string, inode: number): string {
  return `   ${slot}: ${localHex} ${remoteHex} ${state} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;
}

/** A /proc look-alike in a temp dir, with real symlinks for exe, cwd and fd entries. */
export class FakeProc {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-fakeproc-'));

  constructor() {
    fs.mkdirSync(path.join(this.root, 'net'));
    this.setTcp('', '');
  }

  add(proc: FakeProcess): void {
    const dir = path.join(this.root, String(proc.pid));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'fd'), { recursive: true });
    const statRest = `S ${proc.ppid ?? 1} ${proc.pid} ${proc.pid} 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 ${proc.startTimeTicks} 1000000 200 18446744073709551615`;
    fs.writeFileSync(path.join(dir, 'stat'), `${proc.pid} (${proc.comm}) ${statRest}\n`);
    fs.writeFileSync(path.join(dir, 'comm'), `${proc.comm}\n`);
    fs.writeFileSync(path.join(dir, 'cmdline'), proc.cmdline.map((arg) => `${arg}\0`).join(''));
    const environ = Object.entries(proc.environ ?? {}).map(([key, value]) => `${key}=${value}\0`);
    fs.writeFileSync(path.join(dir, 'environ'), environ.join(''));
    if (proc.exe !== undefined) fs.symlinkSync(proc.exe, path.join(dir, 'exe'));
    if (proc.cwd !== undefined) fs.symlinkSync(proc.cwd, path.join(dir, 'cwd'));
    fs.symlinkSync('/dev/null', path.join(dir, 'fd', '0'));
    (proc.socketInodes ?? []).forEach((inode, index) => {
      fs.symlinkSync(`socket:[${inode}]`, path.join(dir, 'fd', String(index + 3)));
    });
  }

  remove(pid: number): void {
    fs.rmSync(path.join(this.root, String(pid)), { recursive: true, force: true });
  }

  setTcp(tcpRows: string, tcp6Rows: string): void {
    fs.writeFileSync(path.join(this.root, 'net', 'tcp'), TCP_HEADER + tcpRows);
    fs.writeFileSync(path.join(this.root, 'net', 'tcp6'), TCP_HEADER + tcp6Rows);
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
