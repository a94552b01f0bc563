/**
 * SONDE_CPU_PROFILE=path.cpuprofile profiles sonde's JavaScript from after
 * the probes are attached until it stops. Node's --cpu-prof cannot be used
 * for this: its SIGPROF samples interrupt the BPF verifier (EAGAIN) while
 * the programs load.
 */
import * as fs from 'node:fs';
import { Session } from 'node:inspector';

export interface CpuProfiler {
  stop(): Promise<void>;
}

export function startCpuProfile(outputPath: string): CpuProfiler {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
  const started = post('Profiler.enable').then(() => post('Profiler.start'));
  return {
    async stop() {
      await started;
      const result = (await post('Profiler.stop')) as { profile: unknown };
      fs.writeFileSync(outputPath, JSON.stringify(result.profile));
      session.disconnect();
    },
  };
}
