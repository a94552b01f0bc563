/**
 * Client for bench/countingReceiver: runs it as its own process (its CPU is
 * then measurable apart from sonde's and the runner's) and asks it for counts.
 */
import * as path from 'node:path';
import { REPO_ROOT, spawnTracked, type Tracked } from './proc';

export interface ReceiverCount {
  spans: number;
  /** Export calls received. */
  requests: number;
}

export class Receiver {
  private constructor(
    private readonly proc: Tracked,
    readonly url: string,
  ) {}

  static async start(): Promise<Receiver> {
    const script = path.join(REPO_ROOT, 'dist', 'bench', 'countingReceiver.js');
    const proc = spawnTracked('countingReceiver', process.execPath, [script], { stdin: 'pipe' });
    const m = await proc.waitFor(/^(http:\/\/\S+)\s*$/m, 15_000, 'stdout');
    return new Receiver(proc, m[1]);
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Spans and export calls received so far. */
  async count(timeoutMs = 5000): Promise<ReceiverCount> {
    if (this.proc.hasExited()) throw new Error('the counting receiver has exited');
    const before = this.proc.stdout().length;
    this.proc.child.stdin!.write('count\n');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fresh = this.proc.stdout().slice(before);
      const m = fresh.match(/^(\d+) (\d+)\s*$/m);
      if (m) return { spans: Number(m[1]), requests: Number(m[2]) };
      if (Date.now() > deadline) throw new Error('the counting receiver did not answer "count" in time');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async close(): Promise<void> {
    if (this.proc.hasExited()) return;
    this.proc.child.stdin!.end();
    const timer = setTimeout(() => void this.proc.stop('SIGKILL', 1000), 5000);
    await this.proc.exited;
    clearTimeout(timer);
  }
}
