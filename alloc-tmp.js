const { OtlpSpanEncoder } = require('/work/main/dist/src/export/otlp/encodeTraces');
const { resourceFromAttributes } = require('/work/main/node_modules/@opentelemetry/resources');
const v8 = require('v8');
const enc = new OtlpSpanEncoder();
const bytes = Buffer.alloc(500 * 1000, 0x2a);
const span = { resource: resourceFromAttributes({ a: 1 }), instrumentationScope: { name: 's' }, bytes, start: 0, length: 480, kind: 1, duration: [0, 0], attributes: {}, traceId: () => '', traceIdTail: () => 0 };
const mode = process.argv[2];
let q = [];
for (let r = 0; r < 4; r++) {
  let allocated = 0, n = 0, last = v8.getHeapStatistics().used_heap_size;
  for (let i = 0; i < 200000; i++) {
    span.start = (i % 1000) * 500;
    const e = enc.copy(span);
    if (mode === 'queue') { q.push(e); if (q.length >= 4096) { const b = q.splice(0, 4096); for (const x of b) enc.release(x); } }
    else if (mode === 'plain') enc.release(e);
    if (i % 1000 === 999) { const h = v8.getHeapStatistics().used_heap_size; if (h >= last) { allocated += h - last; n += 1000; } last = h; }
  }
  console.log(mode, r, (allocated / n).toFixed(1), 'B/span');
}
