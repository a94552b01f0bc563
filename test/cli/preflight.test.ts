import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PreflightError, effectiveCapabilities, kernelVersion, missingCapabilities, preflight } from '../../src/cli/preflight';

/** A /proc/self/status as the kernel writes it, with the given capability masks. */
function status(capEff: string, capPrm = capEff): string {
  return [
    'Name:\tnode',
    'Umask:\t0022',
    'State:\tR (running)',
    'Tgid:\t4242',
    'Pid:\t4242',
    'PPid:\t1',
    'Uid:\t0\t0\t0\t0',
    'Gid:\t0\t0\t0\t0',
    'CapInh:\t0000000000000000',
    `CapPrm:\t${capPrm}`,
    `CapEff:\t${capEff}`,
    'CapBnd:\t000001ffffffffff',
    'CapAmb:\t0000000000000000',
    'NoNewPrivs:\t0',
    'Seccomp:\t0',
    '',
  ].join('\n');
}

// Kernel 5.8+ root: capabilities 0..40.
const ROOT = status('000001ffffffffff');
// Root on a pre-5.8 kernel: 0..37, so no CAP_PERFMON/CAP_BPF, but CAP_SYS_ADMIN.
const OLD_ROOT = status('0000003fffffffff');
const NO_CAPS = status('0000000000000000', '0000000000000000');
// CAP_BPF (39) + CAP_PERFMON (38) + CAP_SYS_PTRACE (19).
const BPF_PERFMON_PTRACE = status('000000c000080000');

const MISSING_BPF = 'CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load and attach eBPF programs';
const MISSING_PROC = "CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH to read traced processes' /proc entries";

const bit = (n: number): bigint => 1n << BigInt(n);

test('effectiveCapabilities reads the CapEff line, not CapPrm or CapBnd', () => {
  assert.equal(effectiveCapabilities(ROOT), 0x1ffffffffffn);
  assert.equal(effectiveCapabilities(OLD_ROOT), 0x3fffffffffn);
  assert.equal(effectiveCapabilities(NO_CAPS), 0n);
  assert.equal(effectiveCapabilities(BPF_PERFMON_PTRACE), bit(39) | bit(38) | bit(19));
  assert.equal(effectiveCapabilities(status('0000000000000000', '000001ffffffffff')), 0n, 'permitted but not effective does not count');
});

test('effectiveCapabilities without a CapEff line is no capabilities', () => {
  assert.equal(effectiveCapabilities(''), 0n);
  assert.equal(effectiveCapabilities('Name:\tnode\nCapPrm:\t000001ffffffffff\n'), 0n);
});

test('missingCapabilities: root has everything', () => {
  assert.deepEqual(missingCapabilities(effectiveCapabilities(ROOT)), []);
  assert.deepEqual(missingCapabilities(effectiveCapabilities(OLD_ROOT)), []);
});

test('missingCapabilities: no capabilities misses both groups', () => {
  assert.deepEqual(missingCapabilities(effectiveCapabilities(NO_CAPS)), [MISSING_BPF, MISSING_PROC]);
});

test('missingCapabilities: CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE are enough', () => {
  assert.deepEqual(missingCapabilities(effectiveCapabilities(BPF_PERFMON_PTRACE)), []);
});

test('missingCapabilities: each alternative and each gap', () => {
  assert.deepEqual(missingCapabilities(bit(21) | bit(2)), [], 'CAP_SYS_ADMIN + CAP_DAC_READ_SEARCH');
  assert.deepEqual(missingCapabilities(bit(39) | bit(19)), [MISSING_BPF], 'CAP_BPF without CAP_PERFMON');
  assert.deepEqual(missingCapabilities(bit(38) | bit(19)), [MISSING_BPF], 'CAP_PERFMON without CAP_BPF');
  assert.deepEqual(missingCapabilities(bit(39) | bit(38)), [MISSING_PROC], 'no /proc access');
  assert.deepEqual(missingCapabilities(bit(21)), [MISSING_PROC], 'CAP_SYS_ADMIN alone');
  assert.deepEqual(missingCapabilities(bit(19)), [MISSING_BPF], 'CAP_SYS_PTRACE alone');
});

test('preflight with no capabilities: PreflightError, exit code 77, names what is missing, nothing attached', () => {
  let caught: unknown;
  try {
    preflight({ procSelfStatus: NO_CAPS, btfPath: '/nonexistent' });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PreflightError, `expected a PreflightError, got ${String(caught)}`);
  assert.equal(caught.name, 'PreflightError');
  assert.equal(caught.exitCode, 77);
  for (const needle of ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_DAC_READ_SEARCH', 'Nothing was attached', 'sudo']) {
    assert.ok(caught.message.includes(needle), `message should mention ${needle}: ${caught.message}`);
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  assert.ok(caught.message.includes(`uid ${uid}`), caught.message);
  // The capability check comes first: BTF is not mentioned.
  assert.ok(!caught.message.includes('BTF'));
});

test('preflight with only the /proc capability missing names only that one', () => {
  assert.throws(
    () => preflight({ procSelfStatus: status('000000c000000000') }),
    (error: unknown) =>
      error instanceof PreflightError &&
      error.exitCode === 77 &&
      error.message.includes(MISSING_PROC) &&
      !error.message.includes(MISSING_BPF) &&
      error.message.includes('Nothing was attached'),
  );
});

test('preflight with capabilities but no BTF names CONFIG_DEBUG_INFO_BTF and the path', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-preflight-'));
  try {
    const btfPath = path.join(dir, 'vmlinux-does-not-exist');
    let caught: unknown;
    try {
      preflight({ procSelfStatus: ROOT, btfPath });
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof PreflightError, `expected a PreflightError, got ${String(caught)}`);
    assert.ok(caught.message.includes('CONFIG_DEBUG_INFO_BTF'), caught.message);
    assert.ok(caught.message.includes(btfPath), caught.message);
    assert.equal(caught.exitCode, 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('preflight with CAP_BPF+CAP_PERFMON+CAP_SYS_PTRACE gets past the capability check', () => {
  assert.throws(
    () => preflight({ procSelfStatus: BPF_PERFMON_PTRACE, btfPath: '/nonexistent/sonde/vmlinux' }),
    (error: unknown) => error instanceof PreflightError && error.message.includes('CONFIG_DEBUG_INFO_BTF') && !error.message.includes('CAP_'),
  );
});

test('kernelVersion reads major.minor from a release string', () => {
  assert.deepEqual(kernelVersion('6.18.44-fc-v782'), [6, 18]);
  assert.deepEqual(kernelVersion('5.10.0-20-amd64'), [5, 10]);
  assert.equal(kernelVersion('weird'), undefined);
});

test('preflight on a kernel older than 5.17 says which helpers are missing and what to run instead', () => {
  assert.throws(
    () => preflight({ procSelfStatus: ROOT, kernelRelease: '5.10.0-20-amd64' }),
    (error: unknown) =>
      error instanceof PreflightError && error.message.includes('kernel 5.10.0-20-amd64 is older than 5.17') && error.message.includes('bpf_loop') && error.message.includes('Nothing was attached'),
  );
  assert.throws(() => preflight({ procSelfStatus: ROOT, kernelRelease: '5.17.0', btfPath: '/nonexistent/vmlinux' }), /CONFIG_DEBUG_INFO_BTF/, '5.17 itself passes the version check');
});

test('PreflightError defaults to exit code 3', () => {
  const e = new PreflightError('x');
  assert.equal(e.exitCode, 3);
  assert.ok(e instanceof Error);
});
