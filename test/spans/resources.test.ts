/**
 * ResourceRegistry: one resource per process, described once and kept,
 * re-described after its time to live; a process already gone is named
 * from the kernel's command name. A lookup starts every batch of spans, so
 * it must not leave a timer behind: each would be a wake-up of the event
 * loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TracedProcess } from '../../src/discovery';
import { ResourceRegistry } from '../../src/spans/resources';

function describerOf(names: Map<number, string>): { describe(pid: number): TracedProcess | undefined; calls: number } {
  const d = {
    calls: 0,
    describe(pid: number): TracedProcess | undefined {
      d.calls++;
      const name = names.get(pid);
      if (name === undefined) return undefined;
      return {
        pid,
        startTimeTicks: 1,
        info: { pid, startTimeTicks: 1, exePath: '/usr/bin/python3.11', exeName: 'python3.11', cmdline: ['python3', 'app.py'] },
        serviceName: name,
        resource: { 'service.name': name, 'process.pid': pid },
        matchedBy: `--pid ${pid}`,
        withDescendants: false,
      };
    },
  };
  return d;
}

/** Timers `f` starts, ref'd or not. */
function timersStartedBy(f: () => void): number {
  const original = globalThis.setTimeout;
  let started = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    started++;
    return original(...args);
  }) as typeof setTimeout;
  try {
    f();
  } finally {
    globalThis.setTimeout = original;
  }
  return started;
}

test('a process is described once, then served from the cache, and no lookup leaves a timer behind', () => {
  const names = new Map([[41, 'checkout']]);
  const describer = describerOf(names);
  const registry = new ResourceRegistry(describer);
  const first = registry.forPid(41, 'python3');
  const started = timersStartedBy(() => {
    for (let i = 0; i < 100; i++) assert.equal(registry.forPid(41, 'python3'), first);
  });
  assert.equal(describer.calls, 1);
  assert.equal(first.known, true);
  assert.equal(first.resource.attributes['service.name'], 'checkout');
  assert.equal(first.resource.attributes['telemetry.sdk.language'], 'python');
  assert.equal(started, 0, 'a cache lookup started a timer');
});

test('a process gone before it could be described is named by its command name, and counted', () => {
  const registry = new ResourceRegistry(describerOf(new Map()));
  const gone = registry.forPid(77, 'curl');
  assert.equal(gone.known, false);
  assert.equal(gone.resource.attributes['service.name'], 'curl');
  assert.equal(gone.resource.attributes['process.executable.name'], 'curl');
  assert.equal(registry.forPid(77, 'curl'), gone, 'a vanished pid is cached too');
  assert.equal(registry.unknownPids, 1);
});

test('after its time to live a pid is described again: a reused pid gets its new name', async () => {
  const names = new Map([[41, 'checkout']]);
  const describer = describerOf(names);
  const registry = new ResourceRegistry(describer, { ttlMs: 20 });
  assert.equal(registry.forPid(41, 'python3').resource.attributes['service.name'], 'checkout');
  names.set(41, 'billing');
  const deadline = Date.now() + 5000;
  while (registry.forPid(41, 'python3').resource.attributes['service.name'] !== 'billing' && Date.now() < deadline) await sleep(10);
  assert.equal(registry.forPid(41, 'python3').resource.attributes['service.name'], 'billing');
  assert.equal(describer.calls >= 2, true);
});
