/**
 * The clock sonde times its own parts with (the `jsBuildMs` and `jsExportMs`
 * counters): CPU time of the JavaScript thread once the native addon is
 * loaded, so that the moments the scheduler hands the core to a traced
 * service do not count; wall time before that, and in unit tests.
 */
let now: () => number = () => performance.now();

export function threadCpuMs(): number {
  return now();
}

export function useThreadCpuClock(clock: () => number): void {
  now = clock;
}
