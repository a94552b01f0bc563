/**
 * One OpenTelemetry Resource per traced process: who served or made the
 * request. Built once per process and kept, bounded, for the spans after.
 */
import * as os from 'node:os';
import { LRUCache } from 'lru-cache';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { TracedProcess } from '../discovery';
import { SONDE_NAME, SONDE_VERSION } from '../version';

export interface ProcessDescriber {
  describe(pid: number): TracedProcess | undefined;
}

const LANGUAGE_BY_EXE: Array<[RegExp, string]> = [
  [/^(node|nodejs|bun|deno)$/, 'nodejs'],
  [/^python[0-9.]*$/, 'python'],
  [/^(java|javaw)$/, 'java'],
  [/^ruby[0-9.]*$/, 'ruby'],
  [/^php(-fpm)?[0-9.]*$/, 'php'],
  [/^dotnet$/, 'dotnet'],
];

export function languageOf(exeName: string): string | undefined {
  for (const [pattern, language] of LANGUAGE_BY_EXE) if (pattern.test(exeName)) return language;
  return undefined;
}

export interface ProcessResource {
  resource: Resource;
  /** false: the process was gone before /proc could be read; named from its command name. */
  known: boolean;
}

export class ResourceRegistry {
  readonly #describer: ProcessDescriber;
  readonly #hostName = os.hostname();
  // A pid's resource is re-resolved after ttl so that a reused pid is
  // noticed; vanished pids are cached too, so that their spans do not each
  // read /proc again.
  readonly #byPid: LRUCache<number, ProcessResource>;
  #unknownPids = 0;

  constructor(describer: ProcessDescriber, options: { max?: number; ttlMs?: number } = {}) {
    this.#describer = describer;
    // ttlResolution 0: lru-cache otherwise caches its clock for 1 ms with a
    // timer, one per batch of spans here (a lookup starts each batch): one
    // more timer for the event loop to run, and a wake-up when it falls due
    // after the loop went to sleep. A clock read per lookup spares both.
    this.#byPid = new LRUCache({ max: options.max ?? 4096, ttl: options.ttlMs ?? 5000, ttlAutopurge: false, ttlResolution: 0 });
  }

  /** Processes that vanished before they could be described. */
  get unknownPids(): number {
    return this.#unknownPids;
  }

  /** `comm` is the kernel's command name for the pid, used when /proc no longer has it. */
  forPid(pid: number, comm: string): ProcessResource {
    const hit = this.#byPid.get(pid);
    if (hit) return hit;
    const proc = this.#describer.describe(pid);
    let entry: ProcessResource;
    if (proc) {
      const attributes: Record<string, string | number | string[]> = { ...proc.resource, ...this.#sondeAttributes() };
      const language = languageOf(proc.info.exeName);
      if (language) attributes['telemetry.sdk.language'] = language;
      entry = { resource: resourceFromAttributes(attributes), known: true };
    } else {
      // A process that exited first (curl, a cron job) is still named by
      // the command name the kernel recorded.
      this.#unknownPids++;
      const attributes: Record<string, string | number> = {
        'service.name': comm || `unknown_service:pid-${pid}`,
        'process.pid': pid,
        ...this.#sondeAttributes(),
      };
      if (comm) attributes['process.executable.name'] = comm;
      entry = { resource: resourceFromAttributes(attributes), known: false };
    }
    this.#byPid.set(pid, entry);
    return entry;
  }

  #sondeAttributes(): Record<string, string> {
    return {
      'host.name': this.#hostName,
      'telemetry.sdk.name': SONDE_NAME,
      'telemetry.sdk.version': SONDE_VERSION,
      'telemetry.distro.name': SONDE_NAME,
      'telemetry.distro.version': SONDE_VERSION,
    };
  }
}
