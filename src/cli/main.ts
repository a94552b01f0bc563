#!/usr/bin/env node
/**
 * The sonde command. Exit codes: 0 stopped cleanly, 1 failed at run time,
 * 2 bad configuration, 3 the host lacks a kernel feature or the native build
 * is missing, 77 not privileged.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { ConfigError, helpText, loadConfig } from '../config/config';
import { NativeBuildMissingError } from '../native/binding';
import { Sonde } from '../runtime/Sonde';
import { createLogger } from '../telemetry/logger';
import { SONDE_VERSION } from '../version';
import { PreflightError, preflight } from './preflight';
import { startCpuProfile, type CpuProfiler } from '../telemetry/cpuProfile';

// Nearly every object sonde makes dies young: V8's nursery is kept at its
// starting size instead of growing to 16 MiB under load. Measured at 11k
// req/s: peak RSS 150 -> 119 MB, and less CPU, as the nursery stays in
// cache. (The nursery's maximum is fixed when the process starts; its
// growth factor is read at each collection, so it can be set here.)
v8.setFlagsFromString('--semi-space-growth-factor=1');

/**
 * Every thread of sonde, those V8 already started included, yields the CPU
 * to the traced services when both want it: on a busy host the tracer's
 * batches then wait instead of the requests it traces. The reader thread
 * started later inherits the value.
 */
function lowerOwnPriority(nice: number, log: ReturnType<typeof createLogger>): void {
  try {
    for (const tid of fs.readdirSync('/proc/self/task')) os.setPriority(Number(tid), nice);
  } catch (error) {
    log.warn({ error: String(error) }, 'could not lower sonde\'s priority; continuing');
  }
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sonde: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (config.help) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (config.version) {
    process.stdout.write(`sonde ${SONDE_VERSION}\n`);
    return;
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat });

  try {
    const report = preflight();
    if (report.mountedTracefs) log.info({ path: report.tracefs }, 'mounted tracefs');
  } catch (error) {
    if (error instanceof PreflightError) {
      process.stderr.write(`sonde: ${error.message}\n`);
      process.exit(error.exitCode);
    }
    throw error;
  }

  if (config.nice > 0) lowerOwnPriority(config.nice, log);

  const sonde = new Sonde(config, log);
  try {
    await sonde.startServing();
    sonde.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`sonde: ${message}\n`);
    if (!(error instanceof NativeBuildMissingError)) {
      process.stderr.write('sonde: nothing is left attached. If the message above names a missing kernel feature, see "What is traced" in README.md.\n');
    }
    void sonde.stop(0).finally(() => process.exit(error instanceof NativeBuildMissingError ? 3 : 1));
    return;
  }

  const profilePath = process.env.SONDE_CPU_PROFILE;
  const profiler: CpuProfiler | undefined = profilePath ? startCpuProfile(profilePath) : undefined;

  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) {
      log.warn('second signal: exiting without waiting for exports');
      process.exit(1);
    }
    log.info({ signal }, 'stopping: detaching probes and flushing spans');
    sonde
      .stop()
      .then(() => profiler?.stop())
      .then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ error: String(error) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // A counters line now, for whoever measures sonde (npm run bench does).
  process.on('SIGUSR2', () => sonde.logCounters());
  // The addon's reader thread holds the loop open; this keeps sonde alive
  // even when the selection has nothing to trace yet.
  setInterval(() => undefined, 1 << 30);
}

void main();
