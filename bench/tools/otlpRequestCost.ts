/**
 * What writing an ExportTraceServiceRequest costs per span, alone: spans
 * the addon encoded, copied into the OTLP channel's slabs as the pipeline
 * does, then put under their resource and scope by OtlpRequestEncoder.
 * Reports the best round's ns per span (the fastest round is the one
 * least disturbed by the VM and the collector), after a warm-up.
 *
 *   node dist/bench/tools/otlpRequestCost.js [--spans N] [--bytes N] [--rounds N]
 */
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OtlpRequestEncoder, OtlpSpanEncoder, type EncodedSpan } from '../../src/export/otlp/encodeTraces';
import type { PreencodedSpan } from '../../src/spans/PreencodedSpan';
import { SpanKind } from '@opentelemetry/api';

function option(argv: string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`usage: otlpRequestCost [--spans N] [--bytes N] [--rounds N] (${name} ${argv[at + 1]})`);
  return value;
}

function main(): void {
  const argv = process.argv.slice(2);
  const spans = option(argv, '--spans', 1000);
  const bytes = option(argv, '--bytes', 350);
  const rounds = option(argv, '--rounds', 1000);
  const warmup = Math.floor(rounds / 4);
  const span: PreencodedSpan = {
    resource: resourceFromAttributes({ 'service.name': 'bench', 'process.pid': 1 }),
    instrumentationScope: { name: 'sonde', version: '0' },
    bytes: Buffer.alloc(bytes, 0x2a),
    start: 0,
    length: bytes,
    kind: SpanKind.SERVER,
    duration: [0, 0],
    attributes: {},
    traceId: () => '',
    traceIdTail: () => 0,
  };
  const slabs = new OtlpSpanEncoder();
  const requests = new OtlpRequestEncoder();
  const out = Buffer.allocUnsafeSlow(spans * (bytes + 8) + 4096);
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const queued: EncodedSpan[] = [];
    for (let i = 0; i < spans; i++) queued.push(slabs.copy(span));
    const started = process.hrtime.bigint();
    requests.encode(queued, (size) => out.subarray(0, size));
    const ns = Number(process.hrtime.bigint() - started);
    for (const q of queued) slabs.release(q);
    if (round >= warmup) best = Math.min(best, ns / spans);
  }
  console.log(`OtlpRequestEncoder.encode: ${best.toFixed(1)} ns per span (best of ${rounds - warmup} rounds of ${spans} spans of ${bytes} bytes)`);
}

main();
