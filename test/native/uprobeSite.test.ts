/**
 * Where the tracer puts a uprobe (native/src/core/UprobeSite.h): on an
 * instruction the kernel emulates when the function's arguments and return
 * address are still as at entry there (or, for SSL_free, past a NULL check
 * of its first argument), else at the entry. Checked on a
 * library assembled here, whose functions begin the ways real ones do, and
 * on this machine's libssl.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNativeModule } from '../../src/native/binding';

const native = loadNativeModule();

const ASSEMBLY = `
  .text
  .globl pushes, endbr_then_push, wrapper, endbr_wrapper, no_frame, inner, endbr_inner, wrapper_of_no_frame
  .globl null_checked, null_checked_far, endbr_null_checked
  # Hidden, as a library's internal functions are: called directly, not
  # through the PLT (whose stub, a jmp through the GOT, is no site).
  .hidden inner, endbr_inner, no_frame
  .type pushes, @function
pushes:            push %rbp
                   pop %rbp
                   ret
  .type endbr_then_push, @function
endbr_then_push:   endbr64
                   push %r13
                   pop %r13
                   ret
  .type inner, @function
inner:             push %r13
                   pop %r13
                   ret
  .type endbr_inner, @function
endbr_inner:       endbr64
                   push %rbx
                   pop %rbx
                   ret
  .type wrapper, @function
wrapper:           sub $0x8,%rsp
                   call inner
                   add $0x8,%rsp
                   ret
  .type endbr_wrapper, @function
endbr_wrapper:     endbr64
                   sub $0x8,%rsp
                   call endbr_inner
                   add $0x8,%rsp
                   ret
  .type no_frame, @function
no_frame:          sub $0x18,%rsp
                   mov %rdi,%rax
                   add $0x18,%rsp
                   ret
  .type wrapper_of_no_frame, @function
wrapper_of_no_frame: sub $0x8,%rsp
                   call no_frame
                   add $0x8,%rsp
                   ret
  .type null_checked, @function
null_checked:      test %rdi,%rdi
                   je 1f
                   push %r13
                   pop %r13
1:                 ret
  .type null_checked_far, @function
null_checked_far:  test %rdi,%rdi
                   je.d32 2f
                   push %rbx
                   pop %rbx
2:                 ret
  .type endbr_null_checked, @function
endbr_null_checked: endbr64
                   test %rdi,%rdi
                   je 3f
                   push %rbp
                   pop %rbp
3:                 ret
`;

function assembled(): { lib: string; symbols: Map<string, number>; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-uprobe-site-'));
  const source = path.join(dir, 'sites.s');
  const lib = path.join(dir, 'libsites.so');
  fs.writeFileSync(source, ASSEMBLY);
  execFileSync('cc', ['-shared', '-nostdlib', '-o', lib, source]);
  // nm prints virtual addresses; in a small shared library the text
  // segment maps at its file offset, which the test checks below through
  // the entries the native side reports.
  const symbols = new Map<string, number>();
  for (const line of execFileSync('nm', ['--defined-only', lib], { encoding: 'utf8' }).split('\n')) {
    const [address, , name] = line.trim().split(/\s+/);
    if (name) symbols.set(name, parseInt(address, 16));
  }
  return { lib, symbols, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('a uprobe sits where the kernel emulates the instruction: the entry, past endbr64, a thin wrapper\'s callee, or past a NULL check when asked', { timeout: 30_000 }, (t) => {
  const { lib, symbols, cleanup } = assembled();
  t.after(cleanup);
  const site = (symbol: string, throughWrapper = true) => native.uprobeSite(lib, symbol, { throughWrapper });
  const at = (symbol: string) => site(symbol, false)!.entryOffset;
  const moved = { viaCallee: false, pastNullCheck: false };
  // The library's text maps at its file offsets, so nm's addresses are
  // offsets too (checked once here, relied on below).
  assert.equal(at('inner') - at('pushes'), symbols.get('inner')! - symbols.get('pushes')!);

  assert.deepEqual(site('pushes'), { entryOffset: at('pushes'), fileOffset: at('pushes'), ...moved, emulated: true });
  assert.deepEqual(site('endbr_then_push'), { entryOffset: at('endbr_then_push'), fileOffset: at('endbr_then_push') + 4, ...moved, emulated: true });
  assert.deepEqual(site('wrapper'), { entryOffset: at('wrapper'), fileOffset: at('inner'), ...moved, viaCallee: true, emulated: true });
  assert.deepEqual(site('endbr_wrapper'), { entryOffset: at('endbr_wrapper'), fileOffset: at('endbr_inner') + 4, ...moved, viaCallee: true, emulated: true });
  // Not asked to look through the wrapper: its own entry, single-stepped.
  assert.deepEqual(site('wrapper', false), { entryOffset: at('wrapper'), fileOffset: at('wrapper'), ...moved, emulated: false });
  // Nothing cheaper: the entry, and it says so.
  assert.deepEqual(site('no_frame'), { entryOffset: at('no_frame'), fileOffset: at('no_frame'), ...moved, emulated: false });
  assert.deepEqual(site('wrapper_of_no_frame'), { entryOffset: at('wrapper_of_no_frame'), fileOffset: at('wrapper_of_no_frame'), ...moved, emulated: false });
  assert.equal(site('absent'), null);
  // Past a NULL check of the first argument only when asked (an entry
  // probe with nothing to do for NULL), with je rel8 or rel32, past endbr64.
  const pastNull = (symbol: string) => native.uprobeSite(lib, symbol, { pastNullCheck: true });
  assert.deepEqual(pastNull('null_checked'), { entryOffset: at('null_checked'), fileOffset: at('null_checked') + 5, ...moved, pastNullCheck: true, emulated: true });
  assert.deepEqual(pastNull('null_checked_far'), { entryOffset: at('null_checked_far'), fileOffset: at('null_checked_far') + 9, ...moved, pastNullCheck: true, emulated: true });
  assert.deepEqual(pastNull('endbr_null_checked'), { entryOffset: at('endbr_null_checked'), fileOffset: at('endbr_null_checked') + 9, ...moved, pastNullCheck: true, emulated: true });
  assert.deepEqual(site('null_checked'), { entryOffset: at('null_checked'), fileOffset: at('null_checked'), ...moved, emulated: false });
  // A wrapper's callee is never taken for a NULL check, nor the reverse.
  assert.equal(pastNull('wrapper')!.fileOffset, at('wrapper'));
  assert.throws(() => native.uprobeSite(path.join(path.dirname(lib), 'sites.s'), 'pushes', {}), /not an x86-64 ELF/);
});

test("this machine's libssl: every OpenSSL probe sits where the kernel emulates the instruction", { timeout: 30_000 }, (t) => {
  const libssl = ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/lib/x86_64-linux-gnu/libssl.so.3'].find((p) => fs.existsSync(p));
  if (!libssl) {
    t.skip('no libssl.so.3 here');
    return;
  }
  // Debian builds libssl without frame pointers: SSL_read_ex begins
  // `sub $8,%rsp; call ssl_read_internal`, whose entry is a push, and
  // SSL_free `test %rdi,%rdi; je`, then a push. A libssl whose probes
  // would single-step fails here, as that costs the services that use it
  // about 12 µs a call on this machine kind.
  const plan = native.tlsProbePlan(libssl);
  assert.deepEqual(
    plan.map((p) => p.symbol),
    ['SSL_read_ex', 'SSL_read', 'SSL_write_ex', 'SSL_write', 'SSL_do_handshake', 'SSL_free'],
  );
  const attached = plan.filter((p) => !p.coveredByPrevious);
  assert.deepEqual(
    attached.map((p) => `${p.symbol}${p.withReturn ? ' and its return' : ''}`),
    ['SSL_read_ex and its return', 'SSL_write_ex and its return', 'SSL_do_handshake and its return', 'SSL_free'],
    'SSL_read and SSL_write are seen through the internal functions their _ex forms wrap',
  );
  for (const p of attached) {
    assert.equal(p.emulated, true, `${p.symbol}: ${JSON.stringify(p)}`);
    const moves = p.program === 'free' ? { pastNullCheck: true } : p.program.endsWith('_ex') ? { throughWrapper: true } : {};
    const site = native.uprobeSite(libssl, p.symbol, moves);
    assert.equal(p.fileOffset, site?.fileOffset, `${p.symbol}: the plan's site is uprobeSite's`);
  }
});
