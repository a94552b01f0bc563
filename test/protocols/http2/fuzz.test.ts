// Random and mutated payloads through the HTTP/2 describer (and so the gRPC
// one): it must never throw, and must give a well-formed span or one of
// its declared failures. SONDE_H2_DESCRIBE_FUZZ_SEED replays a seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Exchange } from '../../../src/native/exchangeDecoder';
import { http2Describer } from '../../../src/protocols/http2/describe';
import { mulberry32 } from '../../support/random';
import { describeContext, fields, h2Exchange, withTrailers } from './fixtures';

const SEED = Number(process.env.SONDE_H2_DESCRIBE_FUZZ_SEED ?? 20240611);
const COUNT = 5000;

const SEEDS: Buffer[] = [
  fields([':method', 'GET'], [':scheme', 'https'], [':authority', 'h:1'], [':path', '/a?token=x&b=1'], ['user-agent', 'ua']),
  fields([':method', 'POST'], [':scheme', 'http'], [':path', '/pkg.Svc/Call'], ['content-type', 'application/grpc'], ['te', 'trailers']),
  fields('?:method', '?', [':path', '/x']),
  fields([':status', '200'], ['content-type', 'application/grpc+proto']),
  withTrailers(fields([':status', '200']), fields(['grpc-status', '5'], ['grpc-message', 'no%20such%E2%9C%93'])),
  fields([':status', '200'], ['grpc-status', '13'], ['grpc-message', '%zz%']),
  Buffer.alloc(0),
];
const TOKENS = ['\r\n', '\n', '\r', '?', ': ', ':', ':path', ':method', ':status', 'grpc-status', 'content-type', 'application/grpc', '%', '%E2', '\u00ff', '\0', '/'];

function mutate(rand: () => number, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const steps = 1 + Math.floor(rand() * 6);
  for (let s = 0; s < steps; s++) {
    const at = Math.floor(rand() * (b.length + 1));
    const op = Math.floor(rand() * 5);
    if (op === 0 && b.length > 0) b[Math.min(at, b.length - 1)] = Math.floor(rand() * 256);
    else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from(TOKENS[Math.floor(rand() * TOKENS.length)], 'latin1'), b.subarray(at)]);
    else if (op === 2) b = b.subarray(0, at);
    else if (op === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(rand() * 8)))]);
    else b = Buffer.concat([b, SEEDS[Math.floor(rand() * SEEDS.length)]]);
  }
  return b;
}

function randomBytes(rand: () => number): Buffer {
  const b = Buffer.alloc(Math.floor(rand() * 64));
  for (let i = 0; i < b.length; i++) b[i] = rand() < 0.3 ? [10, 13, 58, 32, 63][Math.floor(rand() * 5)] : Math.floor(rand() * 256);
  return b;
}

test(`${COUNT} random and mutated payloads never throw and give well-formed spans (seed ${SEED})`, () => {
  const rand = mulberry32(SEED);
  const ctx = describeContext(['/a', '/users/:id']);
  const pick = (): Buffer => (rand() < 0.2 ? randomBytes(rand) : mutate(rand, SEEDS[Math.floor(rand() * SEEDS.length)]));
  let spans = 0;
  for (let i = 0; i < COUNT; i++) {
    const x: Exchange = h2Exchange({
      role: rand() < 0.5 ? 'server' : 'client',
      flags: Math.floor(rand() * 256),
      endErrorCode: rand() < 0.9 ? Math.floor(rand() * 16) : Math.floor(rand() * 2 ** 32),
      responseStartNs: rand() < 0.8 ? 5_002_000_000 : 0,
      requestBytes: Math.floor(rand() * 3),
      request: pick(),
      response: pick(),
    });
    // Offsets that stray past the payload must not throw either.
    if (rand() < 0.02) x.responseHeadEnd = x.payload.length + 10;
    let d;
    try {
      d = http2Describer.describe(x, ctx);
    } catch (e) {
      assert.fail(`input ${i} (seed ${SEED}) threw ${String(e)}: ${JSON.stringify(x.payload.subarray(x.requestHeadStart, x.responseHeadEnd).toString('latin1'))}`);
    }
    if (!d.ok) {
      assert.ok(http2Describer.failures.includes(d.reason), d.reason);
      continue;
    }
    spans++;
    assert.equal(typeof d.name, 'string');
    assert.ok(d.name.length > 0);
    assert.ok(d.kind === SpanKind.SERVER || d.kind === SpanKind.CLIENT);
    assert.ok([SpanStatusCode.UNSET, SpanStatusCode.ERROR].includes(d.status.code));
    if (d.status.code === SpanStatusCode.ERROR) assert.equal(typeof d.attributes['error.type'], 'string');
    for (const [k, v] of Object.entries(d.attributes)) {
      assert.ok(['string', 'number', 'boolean'].includes(typeof v), `${k}: ${typeof v}`);
      if (typeof v === 'number') assert.ok(Number.isFinite(v), k);
    }
    assert.ok(d.attributes['rpc.system'] === 'grpc' ? d.attributes['http.request.method'] === undefined : typeof d.attributes['http.request.method'] === 'string');
  }
  assert.ok(spans > COUNT / 2, `${spans} spans`);
});
