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

export class ResourceRegistry {
  readonly #describer: ProcessDescriber;
  readonly #hostName = os.hostname();
  // A pid's resource is re-resolved after ttl so that a reused pid is noticed.
  readonly #byPid: LRUCache<number, { resource: Resource; process: TracedProcess }>;
  #unknownPids = 0;

  constructor(describer: ProcessDescriber, options: { max?: number; ttlMs?: number } = {}) {
    this.#describer = describer;
    this.#byPid = new LRUCache({ max: options.max ?? 4096, ttl: options.ttlMs ?? 5000, ttlAutopurge: false });
  }

  /** Spans of pids that vanished before they could be described. */
  get unknownPids(): number {
    return this.#unknownPids;
  }

  forPid(pid: number): { resource: Resource; process: TracedProcess } | undefined {
    const hit = this.#byPid.get(pid);
    if (hit) return hit;
    const proc = this.#describer.describe(pid);
    if (!proc) {
      this.#unknownPids++;
      return undefined;
    }
    const attributes: Record<string, string | number | string[]> = {
      ...proc.resource,
      'host.name': this.#hostName,
      'telemetry.sdk.name': SONDE_NAME,
      'telemetry.sdk.version': SONDE_VERSION,
      'telemetry.distro.name': SONDE_NAME,
      'telemetry.distro.version': SONDE_VERSION,
    };
    const language = languageOf(proc.info.exeName);
    if (language) attributes['telemetry.sdk.language'] = language;
    const entry = { resource: resourceFromAttributes(attributes), process: proc };
    this.#byPid.set(pid, entry);
    return entry;
  }
}
