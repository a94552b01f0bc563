/**
 * Every BPF program's deepest chain of calls must fit the 512-byte stack
 * that the verifier allows a program and the functions it calls together.
 *
 * Kernels from 6.13 may give a tracepoint program a private stack, and then
 * check each frame alone, so a program that is too deep can still load on
 * the kernel CI runs. The same object is rejected where there is no private
 * stack: every kernel before 6.13, and uprobes on some later builds (seen
 * here: a 6.18 build refused the OpenSSL uprobes with "combined stack size
 * of 3 calls is 528"). This test reads the frames from the object itself,
 * so it fails on any machine, whatever its kernel does.
 *
 * Frames are taken from clang's code (the deepest r10 offset a function
 * touches or hands out), which is at least what the verifier counts; each
 * is rounded up to 32 bytes as the verifier does without a JIT, and a
 * function that calls bpf_loop gets the 24 bytes the verifier adds when it
 * inlines the loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const OBJECT = path.resolve(__dirname, '../../../bpf/.output/sock_trace.bpf.o');
const MAX_BPF_STACK = 512;
const BPF_LOOP_HELPER = 181;
const BPF_LOOP_INLINE_BYTES = 24;
// llvm-objdump prints immediates in decimal (LLVM 14) or hex (later ones).
const NUM = '(-?(?:0x[0-9a-f]+|\\d+))';
const num = (text: string): number => (text.startsWith('-') ? -Number(text.slice(1)) : Number(text));

interface BpfFunction {
  name: string;
  section: string;
  /** Byte offset of the function in its section. */
  offset: number;
  frameBytes: number;
  callsBpfLoop: boolean;
  /** Callees by name, or by ".text+offset" until resolved. */
  calls: string[];
}

/** Parses `llvm-objdump -dr` of a BPF object (raw bytes shown, as by default). */
export function parseBpfObject(disassembly: string): Map<string, BpfFunction> {
  const functions: BpfFunction[] = [];
  let section = '';
  let current: BpfFunction | undefined;
  // Registers that hold r10 (the frame pointer) plus an offset.
  let frameRegs = new Map<string, number>();
  // A call or a function address waits one line for its relocation; a
  // call with none is pc-relative inside its own section.
  let pending: { kind: 'call' | 'load'; immediate: number; pcRelative?: string } | undefined;
  const settle = () => {
    if (pending?.pcRelative && current) current.calls.push(pending.pcRelative);
    pending = undefined;
  };

  const lines = disassembly.split('\n');
  for (const line of lines) {
    const sectionMatch = /^Disassembly of section (.+):$/.exec(line);
    if (sectionMatch) {
      section = sectionMatch[1];
      settle();
      current = undefined;
      continue;
    }
    const fnMatch = /^([0-9a-f]+) <([A-Za-z_][A-Za-z0-9_]*)>:$/.exec(line);
    // Branch targets (LBB…) are labels inside a function, not functions.
    if (fnMatch && !/^LBB\d+_\d+$/.test(fnMatch[2])) {
      settle();
      current = { name: fnMatch[2], section, offset: parseInt(fnMatch[1], 16), frameBytes: 0, callsBpfLoop: false, calls: [] };
      functions.push(current);
      frameRegs = new Map();
      continue;
    }
    if (!current) continue;

    const reloc = /^\s+[0-9a-f]+:\s+(R_BPF_\w+)\s+(\S+)$/.exec(line);
    if (reloc) {
      const target = reloc[2];
      if (pending?.kind === 'call') {
        // Relocated to a function symbol, or to .text with the target's
        // instruction index minus one in the immediate.
        current.calls.push(target === '.text' ? `.text+${(pending.immediate + 1) * 8}` : target);
      } else if (pending?.kind === 'load') {
        // A function's address, loaded for bpf_loop: its callback. Named
        // by its offset in .text, or by its own symbol (kept below only if
        // that names a function: maps are loaded the same way).
        current.calls.push(target === '.text' ? `.text+${pending.immediate}` : `address-of:${target}`);
      }
      pending = undefined;
      continue;
    }

    const insn = /^\s+(\d+):\t((?:[0-9a-f]{2} ?)+)\t(.*)$/.exec(line);
    if (!insn) continue;
    settle();
    const index = Number(insn[1]);
    const raw = insn[2].trim().split(' ');
    const text = insn[3].trim();

    for (const m of text.matchAll(new RegExp(`r10 - ${NUM}`, 'g'))) current.frameBytes = Math.max(current.frameBytes, num(m[1]));
    const movFrame = /^(r\d+) = r10$/.exec(text);
    const addFrame = new RegExp(`^(r\\d+) \\+= ${NUM}$`).exec(text);
    const assigned = /^(r\d+) (?:=|\+=|-=|\*=|\/=|&=|\|=|<<=|>>=|s>>=|\^=)/.exec(text);
    if (movFrame) {
      frameRegs.set(movFrame[1], 0);
    } else if (addFrame && frameRegs.has(addFrame[1]) && num(addFrame[2]) < 0) {
      const offset = frameRegs.get(addFrame[1])! - num(addFrame[2]);
      frameRegs.set(addFrame[1], offset);
      current.frameBytes = Math.max(current.frameBytes, offset);
    } else if (assigned) {
      frameRegs.delete(assigned[1]);
    }

    const call = new RegExp(`^call ${NUM}$`).exec(text);
    if (call) {
      const immediate = num(call[1]);
      // src_reg 1 (the high nibble of the second byte) marks a BPF-to-BPF
      // call; 0 a helper, whose id is the immediate.
      if (parseInt(raw[1], 16) >> 4 === 1) {
        pending = { kind: 'call', immediate, pcRelative: `${section}@${index + immediate + 1}` };
      } else if (immediate === BPF_LOOP_HELPER) {
        current.callsBpfLoop = true;
      }
      // A call clobbers r0-r5.
      for (const r of ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']) frameRegs.delete(r);
      continue;
    }
    const load = new RegExp(`^r\\d+ = ${NUM} ll$`).exec(text);
    if (load) pending = { kind: 'load', immediate: num(load[1]) };
  }
  settle();

  const byName = new Map(functions.map((f) => [f.name, f]));
  const bySectionOffset = new Map(functions.map((f) => [`${f.section}+${f.offset}`, f.name]));
  const bySectionInsn = new Map(functions.map((f) => [`${f.section}@${f.offset / 8}`, f.name]));
  for (const f of functions) {
    f.calls = f.calls.filter((c) => !c.startsWith('address-of:') || byName.has(c.slice('address-of:'.length)));
    f.calls = f.calls.map((c) => {
      if (c.startsWith('address-of:')) return c.slice('address-of:'.length);
      const name = c.startsWith('.text+') ? bySectionOffset.get(c) : c.includes('@') ? bySectionInsn.get(c) : c;
      assert.ok(name && byName.has(name), `${f.name} calls ${c}, which is not a function of the object`);
      return name!;
    });
  }
  return byName;
}

function roundedFrame(f: BpfFunction): number {
  const bytes = f.frameBytes + (f.callsBpfLoop ? BPF_LOOP_INLINE_BYTES : 0);
  return bytes === 0 ? 0 : Math.ceil(bytes / 32) * 32;
}

/** The deepest chain of frames from `entry`, with its bytes. */
export function deepestChain(functions: Map<string, BpfFunction>, entry: string, seen: string[] = []): { bytes: number; chain: string[] } {
  const f = functions.get(entry)!;
  assert.ok(!seen.includes(entry), `recursion through ${[...seen, entry].join(' -> ')}`);
  let deepest = { bytes: 0, chain: [] as string[] };
  for (const callee of new Set(f.calls)) {
    const below = deepestChain(functions, callee, [...seen, entry]);
    if (below.bytes > deepest.bytes) deepest = below;
  }
  const own = roundedFrame(f);
  return { bytes: own + deepest.bytes, chain: [`${entry} (${own})`, ...deepest.chain] };
}

test('every BPF program and the functions it calls fit 512 bytes of stack together', (t) => {
  if (!existsSync(OBJECT)) {
    assert.fail(`${OBJECT} is missing: build it with "npm run build:bpf"`);
  }
  const disassembly = execFileSync('llvm-objdump', ['-dr', OBJECT], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const functions = parseBpfObject(disassembly);
  const programs = [...functions.values()].filter((f) => f.section !== '.text');
  assert.ok(programs.length >= 20, `found ${programs.length} programs in the object`);
  // The parse must see what is there: the HTTP/2 walk reaches its step
  // through bpf_loop, and the TLS write calls into the walk.
  assert.ok(functions.get('h2_walk')?.callsBpfLoop);
  assert.ok(functions.get('h2_walk')?.calls.includes('h2_step_cb'));
  assert.ok(functions.get('h2_step_cb')?.calls.includes('h2_step'));

  const tooDeep: string[] = [];
  for (const p of programs) {
    const { bytes, chain } = deepestChain(functions, p.name);
    t.diagnostic(`${p.name}: ${bytes} bytes: ${chain.join(' -> ')}`);
    if (bytes > MAX_BPF_STACK) tooDeep.push(`${p.name}: ${bytes} bytes: ${chain.join(' -> ')}`);
  }
  assert.deepEqual(tooDeep, [], `programs whose frames pass ${MAX_BPF_STACK} bytes together:\n${tooDeep.join('\n')}`);
});

test('the stack parse counts a frame handed out by address, a bpf_loop callback and a relocated call', () => {
  const sample = [
    'Disassembly of section .text:',
    '',
    '0000000000000000 <cb>:',
    '       0:\t85 10 00 00 ff ff ff ff\tcall -1',
    '\t\t0000000000000000:  R_BPF_64_32\tleaf',
    '       1:\t95 00 00 00 00 00 00 00\texit',
    '',
    '0000000000000010 <leaf>:',
    '       2:\t7b 1a f8 ff 00 00 00 00\t*(u64 *)(r10 - 8) = r1',
    '       3:\t95 00 00 00 00 00 00 00\texit',
    '',
    'Disassembly of section uprobe:',
    '',
    '0000000000000000 <prog>:',
    '       0:\tbf a2 00 00 00 00 00 00\tr2 = r10',
    '       1:\t07 02 00 00 c0 ff ff ff\tr2 += -64',
    '       2:\t18 02 00 00 00 00 00 00\tr2 = 0 ll',
    '\t\t0000000000000010:  R_BPF_64_64\t.text',
    '       4:\t85 00 00 00 b5 00 00 00\tcall 181',
    '       5:\t95 00 00 00 00 00 00 00\texit',
    '',
  ].join('\n');
  const functions = parseBpfObject(sample);
  assert.equal(functions.get('prog')!.frameBytes, 64);
  assert.equal(functions.get('prog')!.callsBpfLoop, true);
  assert.deepEqual(functions.get('prog')!.calls, ['cb']);
  assert.deepEqual(functions.get('cb')!.calls, ['leaf']);
  // 64 + 24 for the inlined loop, rounded to 96; the leaf's 8 to 32.
  assert.deepEqual(deepestChain(functions, 'prog'), { bytes: 128, chain: ['prog (96)', 'cb (0)', 'leaf (32)'] });
});

test('the stack parse reads hex immediates (later LLVMs) and a pc-relative call inside .text', () => {
  const sample = [
    'Disassembly of section .text:',
    '',
    '0000000000000000 <outer>:',
    '       0:\tbf a1 00 00 00 00 00 00\tr1 = r10',
    '       1:\t07 01 00 00 c0 ff ff ff\tr1 += -0x40',
    '       2:\t85 10 00 00 01 00 00 00\tcall 0x1',
    '       3:\t95 00 00 00 00 00 00 00\texit',
    '',
    '0000000000000020 <inner>:',
    '       4:\t7b 1a f0 ff 00 00 00 00\t*(u64 *)(r10 - 0x10) = r1',
    '       5:\t85 00 00 00 b5 00 00 00\tcall 0xb5',
    '       6:\t95 00 00 00 00 00 00 00\texit',
    '',
  ].join('\n');
  const functions = parseBpfObject(sample);
  assert.equal(functions.get('outer')!.frameBytes, 64);
  assert.deepEqual(functions.get('outer')!.calls, ['inner']);
  assert.equal(functions.get('inner')!.frameBytes, 16);
  assert.equal(functions.get('inner')!.callsBpfLoop, true);
  // 64; 16 + 24 for the inlined loop, rounded to 64.
  assert.equal(deepestChain(functions, 'outer').bytes, 128);
});
