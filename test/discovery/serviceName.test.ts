import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { ProcessInfo } from '../../src/discovery/procfs';
import { parseResourceAttributes, resourceAttributesFor, serviceNameFor } from '../../src/discovery/serviceName';

function processInfo(exePath: string | undefined, cmdline: string[], cwd?: string, comm = 'comm'): ProcessInfo {
  const info: ProcessInfo = {
    pid: 4242,
    startTimeTicks: 99,
    exePath,
    exeName: exePath === undefined ? comm : path.posix.basename(exePath),
    cmdline,
  };
  if (cwd !== undefined) info.cwd = cwd;
  return info;
}

const NODE = '/usr/local/bin/node';
const PYTHON = '/usr/bin/python3.11';
const NO_ENV = new Map<string, string>();

const namingTable: Array<[label: string, info: ProcessInfo, expected: string]> = [
  ['node script', processInfo(NODE, ['node', '/srv/app/server.js']), 'server'],
  ['node script with flags', processInfo(NODE, ['node', '--inspect', '-r', 'dotenv/config', '--require=x', '/srv/payments/api.mjs']), 'api'],
  ['node generic index.js → directory', processInfo(NODE, ['node', '/srv/orders/index.js']), 'orders'],
  ['node relative index.js → cwd name', processInfo(NODE, ['node', 'index.js'], '/srv/orders'), 'orders'],
  ['node generic name skips generic dirs', processInfo(NODE, ['node', 'dist/main.js'], '/home/ci/checkout'), 'checkout'],
  ['node dot → cwd name', processInfo(NODE, ['node', '.'], '/srv/inventory'), 'inventory'],
  ['node -e has no script', processInfo(NODE, ['node', '-e', 'require("http")']), 'unknown_service:node'],
  ['node inspect subcommand', processInfo(NODE, ['node', 'inspect', 'billing.js']), 'billing'],
  ['deno run', processInfo('/usr/bin/deno', ['deno', 'run', '--allow-net', 'chat.ts']), 'chat'],
  ['process title set by the program', processInfo(NODE, ['orders-api']), 'orders-api'],
  ['python -m module', processInfo(PYTHON, ['python3', '-m', 'http.server', '8000']), 'http.server'],
  ['python -m bundled with flags', processInfo(PYTHON, ['python3', '-um', 'uvicorn', 'main:app']), 'uvicorn'],
  ['python script with flags', processInfo(PYTHON, ['python3', '-u', '-X', 'dev', '-W', 'ignore', '/opt/reports/report_gen.py']), 'report_gen'],
  ['python generic main.py → directory', processInfo(PYTHON, ['python3', '-B', 'main.py'], '/srv/billing'), 'billing'],
  ['python -c has no script', processInfo(PYTHON, ['python3', '-c', 'print(1)']), 'unknown_service:python3.11'],
  ['python shebang script', processInfo(PYTHON, ['/usr/bin/python3', '/usr/local/bin/gunicorn', 'app:app']), 'gunicorn'],
  ['gunicorn title', processInfo(PYTHON, ['gunicorn: master [orders]']), 'gunicorn'],
  ['java -jar strips version', processInfo('/usr/lib/jvm/bin/java', ['java', '-Xmx512m', '-cp', 'x', '-jar', '/opt/orders-service-1.4.2-SNAPSHOT.jar']), 'orders-service'],
  ['java main class', processInfo('/usr/lib/jvm/bin/java', ['java', '-cp', '/opt/lib/*', 'com.acme.InventoryMain']), 'InventoryMain'],
  ['ruby script', processInfo('/usr/bin/ruby3.2', ['ruby', '-w', '-I', 'lib', 'bin/puma']), 'puma'],
  ['perl bundled -wle has no script', processInfo('/usr/bin/perl', ['perl', '-wle', 'print 1']), 'unknown_service:perl'],
  ['perl -l takes digits, not the next letters', processInfo('/usr/bin/perl', ['perl', '-l012w', '-I', 'lib', 'daemon.pl']), 'daemon'],
  ['php -d then script', processInfo('/usr/bin/php8.2', ['php', '-d', 'memory_limit=1G', 'worker.php']), 'worker'],
  ['nginx uses exe name', processInfo('/usr/sbin/nginx', ['nginx: master process /usr/sbin/nginx -g daemon off;']), 'nginx'],
  ['unreadable exe falls back to comm', processInfo(undefined, [], undefined, 'kworker/0:1'), 'kworker/0:1'],
  ['no name at all', processInfo(undefined, [], undefined, ''), 'unknown_service'],
];

for (const [label, info, expected] of namingTable) {
  test(`serviceNameFor: ${label}`, () => {
    assert.equal(serviceNameFor(info, NO_ENV), expected);
  });
}

test('serviceNameFor: OTEL_SERVICE_NAME wins over everything', () => {
  const environ = new Map([
    ['OTEL_SERVICE_NAME', 'checkout'],
    ['OTEL_RESOURCE_ATTRIBUTES', 'service.name=other'],
  ]);
  assert.equal(serviceNameFor(processInfo(NODE, ['node', '/srv/orders/index.js']), environ), 'checkout');
});

test('serviceNameFor: blank OTEL_SERVICE_NAME is ignored', () => {
  const environ = new Map([['OTEL_SERVICE_NAME', '  ']]);
  assert.equal(serviceNameFor(processInfo(NODE, ['node', '/srv/orders/index.js']), environ), 'orders');
});

test('serviceNameFor: service.name from OTEL_RESOURCE_ATTRIBUTES, percent-decoded', () => {
  const environ = new Map([['OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment=prod, service.name=cart%20api%2Cv2']]);
  assert.equal(serviceNameFor(processInfo(NODE, ['node', 'x.js']), environ), 'cart api,v2');
});

test('parseResourceAttributes: skips malformed pairs and keeps undecodable values raw', () => {
  const parsed = parseResourceAttributes('a=1,broken,=nokey, b = x%zz ,c=%C3%A9');
  assert.deepEqual([...parsed], [['a', '1'], ['b', 'x%zz'], ['c', 'é']]);
});

test('resourceAttributesFor: process attributes plus the owner’s, pid protected', () => {
  const info = processInfo(NODE, ['node', '--inspect', '/srv/orders/index.js'], '/srv/orders');
  const environ = new Map([
    ['OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment=staging,team=core%2Fpayments,process.pid=1,service.name=orders-svc'],
  ]);
  assert.deepEqual(resourceAttributesFor(info, environ), {
    'service.name': 'orders-svc',
    'process.pid': 4242,
    'process.executable.name': 'node',
    'process.executable.path': NODE,
    'process.command': 'node',
    'process.command_line': 'node --inspect /srv/orders/index.js',
    'process.command_args': ['node', '--inspect', '/srv/orders/index.js'],
    'deployment.environment': 'staging',
    team: 'core/payments',
  });
});

test('resourceAttributesFor: no executable path or command when unknown', () => {
  const attributes = resourceAttributesFor(processInfo(undefined, [], undefined, 'kthreadd'), NO_ENV);
  assert.deepEqual(attributes, {
    'process.pid': 4242,
    'process.executable.name': 'kthreadd',
    'service.name': 'kthreadd',
  });
});
