/**
 * Interpreters run someone else's program, so their own name says little
 * about the service: the script or module they were given does.
 */

export type InterpreterFamily = 'node' | 'python' | 'ruby' | 'perl' | 'php' | 'java';

const VERSION = String.raw`(?:\d+(?:\.\d+)*)?`;

const FAMILIES: ReadonlyArray<readonly [RegExp, InterpreterFamily]> = [
  [/^(?:node|nodejs|deno|bun)$/, 'node'],
  [new RegExp(`^(?:python|pypy)${VERSION}$`), 'python'],
  [new RegExp(`^ruby${VERSION}$`), 'ruby'],
  [new RegExp(`^perl${VERSION}$`), 'perl'],
  [new RegExp(`^php${VERSION}$`), 'php'],
  [/^java$/, 'java'],
];

export function interpreterFamily(exeName: string): InterpreterFamily | undefined {
  for (const [pattern, family] of FAMILIES) {
    if (pattern.test(exeName)) return family;
  }
  return undefined;
}

export function isInterpreter(exeName: string): boolean {
  return interpreterFamily(exeName) !== undefined;
}
