import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, prettyLine } from '../../src/telemetry/logger';

// 2023-11-14T22:13:20.123Z
const T = 1_700_000_000_123;

test('prettyLine: time of day, padded level, message, then extras', () => {
  assert.equal(
    prettyLine(JSON.stringify({ level: 30, time: T, msg: 'attached', pid: 42, ports: [80, 443], exe: 'node' })),
    '22:13:20.123 INFO  attached  pid=42 ports=[80,443] exe=node',
  );
});

test('prettyLine: every pino level name', () => {
  const cases: Array<[number, string]> = [
    [10, 'TRACE'],
    [20, 'DEBUG'],
    [30, 'INFO '],
    [40, 'WARN '],
    [50, 'ERROR'],
    [60, 'FATAL'],
  ];
  for (const [level, name] of cases) assert.equal(prettyLine(JSON.stringify({ level, time: T, msg: 'm' })), `22:13:20.123 ${name} m`);
});

test('prettyLine: an unknown level is shown as its number', () => {
  assert.equal(prettyLine(JSON.stringify({ level: 35, time: T, msg: 'm' })), '22:13:20.123 35    m');
});

test('prettyLine: no extras means no trailing separator', () => {
  assert.equal(prettyLine(JSON.stringify({ level: 40, time: T, msg: 'queue full' })), '22:13:20.123 WARN  queue full');
});

test('prettyLine: missing msg, string/object/boolean/null extras', () => {
  assert.equal(
    prettyLine(JSON.stringify({ level: 50, time: T, err: { type: 'Error', message: 'boom' }, ok: false, none: null, name: 'with space' })),
    '22:13:20.123 ERROR   err={"type":"Error","message":"boom"} ok=false none=null name=with space',
  );
});

test('prettyLine: extras keep their order; level, time and msg are never repeated', () => {
  const line = prettyLine(JSON.stringify({ z: 1, level: 30, a: 2, time: T, msg: 'x', m: 3 }));
  assert.equal(line, '22:13:20.123 INFO  x  z=1 a=2 m=3');
});

test('prettyLine: text that is not JSON passes through unchanged', () => {
  assert.equal(prettyLine('plain text line'), 'plain text line');
  assert.equal(prettyLine('{"broken":'), '{"broken":');
  assert.equal(prettyLine(''), '');
});

test('prettyLine: without a time field the current time is used', () => {
  const line = prettyLine(JSON.stringify({ level: 30, msg: 'now' }));
  assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO  now$/);
});

test('createLogger json: one JSON object per line, epoch-ms time, no pid/hostname', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'json', write: (l) => lines.push(l) });
  const before = Date.now();
  log.info({ pid: 7, exporters: ['otlp'] }, 'started');
  log.warn('careful');
  const after = Date.now();
  assert.equal(lines.length, 2);
  for (const l of lines) assert.ok(l.endsWith('\n') && l.indexOf('\n') === l.length - 1, JSON.stringify(l));
  const first = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(typeof first.time, 'number');
  assert.ok((first.time as number) >= before && (first.time as number) <= after);
  delete first.time;
  assert.deepEqual(first, { level: 30, pid: 7, exporters: ['otlp'], msg: 'started' });
  const second = JSON.parse(lines[1]) as Record<string, unknown>;
  delete second.time;
  assert.deepEqual(second, { level: 40, msg: 'careful' });
});

test('createLogger pretty: readable lines ending in a newline', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'pretty', write: (l) => lines.push(l) });
  log.debug({ fd: 3 }, 'conn');
  log.info('ready');
  log.error({ code: 'EPERM' }, 'attach failed');
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} DEBUG conn  fd=3\n$/);
  assert.match(lines[1], /^\d\d:\d\d:\d\d\.\d{3} INFO  ready\n$/);
  assert.match(lines[2], /^\d\d:\d\d:\d\d\.\d{3} ERROR attach failed  code=EPERM\n$/);
});

test('createLogger: messages below the level are not written', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', format: 'json', write: (l) => lines.push(l) });
  log.debug('no');
  log.info('no');
  log.warn('yes');
  log.error('yes too');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['yes', 'yes too'],
  );
});

test('createLogger pretty: errors are serialized with their message', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'pretty', write: (l) => lines.push(l) });
  log.error({ err: new Error('ring buffer lost 12 events') }, 'capture');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} ERROR capture  err=\{.*"message":"ring buffer lost 12 events".*\}\n$/);
});

test('createLogger child loggers carry their bindings', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'json', write: (l) => lines.push(l) }).child({ component: 'export' });
  log.info('x');
  const rec = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(rec.component, 'export');
  assert.equal(rec.msg, 'x');
});
