import { execFileSync } from 'node:child_process';

/** Whether this process may make network namespaces (`unshare --net`: root, or CAP_SYS_ADMIN). */
export function canUnshareNet(): boolean {
  try {
    execFileSync('unshare', ['--net', 'true'], { stdio: 'ignore', timeout: 30_000, killSignal: 'SIGKILL' });
    return true;
  } catch {
    return false;
  }
}
