import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProcessInfo } from '../../src/discovery/procfs';
import { globMatch, matchesExe, selectsEverything } from '../../src/discovery/selectors';

const globTable: Array<[pattern: string, text: string, expected: boolean]> = [
  ['node', 'node', true],
  ['node', 'nodejs', false],
  ['node', 'nod', false],
  ['', '', true],
  ['', 'x', false],
  ['*', '', true],
  ['*', 'anything/at/all', true],
  ['*nginx*', 'nginx', true],
  ['*nginx*', 'openresty-nginx-debug', true],
  ['*nginx*', 'ngin', false],
  ['python3*', 'python3.11', true],
  ['python3.1?', 'python3.11', true],
  ['python3.1?', 'python3.1', false],
  ['?', '', false],
  ['/usr/bin/*', '/usr/bin/python3.11', true],
  ['/usr/bin/*', '/usr/local/bin/node', false],
  ['/opt/*', '/opt/app/v2/bin/server', true],
  ['/opt/*/server', '/opt/app/v2/bin/server', true],
  ['a*b*c', 'aXXbYYc', true],
  ['a*b*c', 'aXXcYYb', false],
  ['*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
  ['Node', 'node', false],
  ['[a]', 'a', false],
  ['[a]', '[a]', true],
];

for (const [pattern, text, expected] of globTable) {
  test(`globMatch(${JSON.stringify(pattern)}, ${JSON.stringify(text)}) is ${expected}`, () => {
    assert.equal(globMatch(pattern, text), expected);
  });
}

function processInfo(exePath: string | undefined, exeName: string, cmdline: string[]): ProcessInfo {
  return { pid: 1, startTimeTicks: 1, exePath, exeName, cmdline };
}

const python = processInfo('/usr/bin/python3.11', 'python3.11', ['python3', '-m', 'http.server']);
const nginx = processInfo('/usr/sbin/nginx', 'nginx', ['nginx: worker process']);
const renamed = processInfo('/usr/local/bin/myserver', 'myserver', ['node', 'x.js']);

const exeTable: Array<[pattern: string, info: ProcessInfo, expected: boolean]> = [
  ['python3', python, true],
  ['python3.11', python, true],
  ['python*', python, true],
  ['/usr/bin/*', python, true],
  ['/usr/bin/python3', python, false],
  ['nginx', nginx, true],
  ['*ngin*', nginx, true],
  ['/usr/*/nginx', nginx, true],
  ['sbin', nginx, false],
  ['node', renamed, false],
  ['myserver', renamed, true],
  ['/anything', processInfo(undefined, 'kthreadd', []), false],
  ['kthreadd', processInfo(undefined, 'kthreadd', []), true],
];

for (const [pattern, info, expected] of exeTable) {
  test(`matchesExe(${JSON.stringify(pattern)}, ${info.exePath ?? info.exeName}) is ${expected}`, () => {
    assert.equal(matchesExe(pattern, info), expected);
  });
}

test('selectsEverything only when every selector is empty', () => {
  assert.equal(selectsEverything({ pids: [], exes: [], openPorts: [] }), true);
  assert.equal(selectsEverything({ pids: [1], exes: [], openPorts: [] }), false);
  assert.equal(selectsEverything({ pids: [], exes: ['node'], openPorts: [] }), false);
  assert.equal(selectsEverything({ pids: [], exes: [], openPorts: [80] }), false);
});
