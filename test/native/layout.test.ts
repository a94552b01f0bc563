/**
 * The hand-written decoders must agree with the structs the native build
 * compiles (bpf/shared/events.h, native/src/core/ExchangeRecord.h).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeModule } from '../../src/native/binding';
import {
  EXCHANGE_ROLE_CODES,
  ExchangeFlags,
  ExchangeProtocol,
  LinkSource,
  RECORD_HEADER_BYTES,
  RECORD_OFFSETS,
} from '../../src/native/exchangeDecoder';
import { REDACTION_HINTS } from '../../src/protocols/http1/redact';
import { ENCODED_SPAN_HEADER_BYTES, ENCODED_SPAN_METHODS, ENCODED_SPAN_OFFSETS, EncodedSpanShape } from '../../src/native/encodedSpans';
import { Cls, Dir, EVENT_LAYOUT, H2Flags, Kind, Proto, Role, Source } from './fakeEvents';

const layout = loadNativeModule().layout();

test('ExchangeRecord offsets in exchangeDecoder.ts match the native struct', () => {
  assert.equal(RECORD_HEADER_BYTES, layout.exchangeRecord.size);
  const { size, ...offsets } = layout.exchangeRecord;
  void size;
  assert.deepEqual({ ...RECORD_OFFSETS }, offsets);
});

test('kernel event offsets used by the tests match events.h', () => {
  assert.equal(EVENT_LAYOUT.msgStartHeaderBytes, layout.events.msgStartHeaderBytes);
  assert.equal(EVENT_LAYOUT.closeEventBytes, layout.events.closeEventBytes);
  assert.equal(EVENT_LAYOUT.selfConnectEventBytes, layout.events.selfConnectEventBytes);
  assert.equal(EVENT_LAYOUT.processExitEventBytes, layout.events.processExitEventBytes);
  assert.equal(EVENT_LAYOUT.headerBytes, layout.events.headerBytes);
  assert.equal(EVENT_LAYOUT.sourceOffset, layout.events.sourceOffset);
  assert.equal(EVENT_LAYOUT.protocolOffset, layout.events.protocolOffset);
  assert.equal(EVENT_LAYOUT.causeFdOffset, layout.events.causeFdOffset);
  assert.equal(EVENT_LAYOUT.causeGenerationOffset, layout.events.causeGenerationOffset);
  assert.equal(EVENT_LAYOUT.connectEventBytes, layout.events.connectEventBytes);
  assert.equal(EVENT_LAYOUT.tupleOffset, layout.events.tupleOffset);
  assert.equal(EVENT_LAYOUT.prevOffset, layout.events.prevOffset);
  assert.equal(EVENT_LAYOUT.commOffset, layout.events.commOffset);
  assert.equal(EVENT_LAYOUT.chunkBytesOffset, layout.events.chunkBytesOffset);
  assert.equal(EVENT_LAYOUT.payloadBytesOffset, layout.events.payloadBytesOffset);
});

test('HTTP/2 frames event offsets, bounds and flags used by the tests match events.h', () => {
  assert.equal(EVENT_LAYOUT.h2FramesHeaderBytes, layout.events.h2FramesHeaderBytes);
  assert.equal(EVENT_LAYOUT.h2ChunkBytesOffset, layout.events.h2ChunkBytesOffset);
  assert.equal(EVENT_LAYOUT.h2PayloadBytesOffset, layout.events.h2PayloadBytesOffset);
  assert.equal(EVENT_LAYOUT.h2FirstFrameOffsetOffset, layout.events.h2FirstFrameOffsetOffset);
  assert.equal(EVENT_LAYOUT.h2FlagsOffset, layout.events.h2FlagsOffset);
  assert.equal(EVENT_LAYOUT.h2EventBytes, layout.events.h2EventBytes);
  assert.equal(EVENT_LAYOUT.h2CopyBound, layout.events.h2CopyBound);
  assert.deepEqual({ ...H2Flags }, layout.h2FramesFlags);
});

test('event kinds and exchange flags spelled out in TypeScript match the native enums', () => {
  assert.equal(EVENT_LAYOUT.msgContinueHeaderBytes, layout.events.msgContinueHeaderBytes);
  assert.deepEqual({ ...Kind }, layout.eventKinds);
  assert.deepEqual({ ...ExchangeFlags }, layout.exchangeFlags);
});

/** A TypeScript numeric enum's names and values, without its reverse mapping. */
function membersOf(e: Record<string, string | number>): Record<string, number> {
  return Object.fromEntries(Object.entries(e).filter((entry): entry is [string, number] => typeof entry[1] === 'number'));
}

test('directions, role hints, message classes, sources and connection protocols in fakeEvents.ts match events.h', () => {
  assert.deepEqual({ ...Source }, layout.sources);
  assert.deepEqual({ ...Proto }, layout.connProtocols);
  assert.deepEqual({ ...Dir }, layout.directions);
  assert.deepEqual({ ...Role }, layout.roleHints);
  assert.deepEqual({ ...Cls }, layout.msgClasses);
});

test('link sources, protocols and roles decoded by exchangeDecoder.ts match ExchangeRecord.h', () => {
  assert.deepEqual(membersOf(LinkSource), layout.linkSources);
  assert.deepEqual(membersOf(ExchangeProtocol), layout.protocols);
  assert.deepEqual({ ...EXCHANGE_ROLE_CODES }, layout.exchangeRoles);
});

test('EncodedSpanEntry offsets, methods and shapes in encodedSpans.ts match the native struct', () => {
  assert.equal(ENCODED_SPAN_HEADER_BYTES, layout.encodedSpanEntry.size);
  const { size, ...offsets } = layout.encodedSpanEntry;
  void size;
  assert.deepEqual({ ...ENCODED_SPAN_OFFSETS }, offsets);
  assert.deepEqual([...ENCODED_SPAN_METHODS], layout.encodedSpanMethods);
  assert.deepEqual(membersOf(EncodedSpanShape), layout.encodedSpanShapes);
});

test('the redaction hints the addon checks a query for are redact.ts\'s', () => {
  assert.deepEqual([...REDACTION_HINTS], layout.redactionHints);
});
