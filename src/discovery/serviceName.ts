import * as path from 'node:path';
import { interpreterFamily, type InterpreterFamily } from './interpreters';
import type { ProcessInfo } from './procfs';

export type ResourceAttributeValue = string | number | string[];
export type ResourceAttributes = Record<string, ResourceAttributeValue>;

const SERVICE_NAME = 'service.name';
const PROCESS_PID = 'process.pid';

/**
 * The name an OpenTelemetry SDK inside the target would have used, when its
 * owner configured one; otherwise a name guessed from how it was started.
 */
export function serviceNameFor(info: ProcessInfo, environ: Map<string, string>): string {
  const configured = environ.get('OTEL_SERVICE_NAME')?.trim();
  if (configured) return configured;
  const fromAttributes = parseResourceAttributes(environ.get('OTEL_RESOURCE_ATTRIBUTES')).get(SERVICE_NAME)?.trim();
  if (fromAttributes) return fromAttributes;

  const family = interpreterFamily(info.exeName);
  if (family === undefined) return info.exeName !== '' ? info.exeName : 'unknown_service';
  const fromCommandLine = nameFromCommandLine(family, info, environ);
  if (fromCommandLine) return fromCommandLine;
  // OTel's own default, which reads as "not named" rather than claiming the service is called "node".
  return `unknown_service:${info.exeName}`;
}

export function resourceAttributesFor(info: ProcessInfo, environ: Map<string, string>): ResourceAttributes {
  const attributes: ResourceAttributes = {
    [PROCESS_PID]: info.pid,
    'process.executable.name': info.exeName,
  };
  if (info.exePath !== undefined) attributes['process.executable.path'] = info.exePath;
  if (info.cmdline.length > 0) {
    attributes['process.command'] = info.cmdline[0]!;
    attributes['process.command_line'] = info.cmdline.join(' ');
    attributes['process.command_args'] = [...info.cmdline];
  }
  // The owner's own words about their service outrank what sonde infers,
  // except the pid, which sonde knows for certain and keys everything on.
  for (const [key, value] of parseResourceAttributes(environ.get('OTEL_RESOURCE_ATTRIBUTES'))) {
    if (key !== PROCESS_PID) attributes[key] = value;
  }
  attributes[SERVICE_NAME] = serviceNameFor(info, environ);
  return attributes;
}

/** OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs, values percent-encoded. */
export function parseResourceAttributes(raw: string | undefined): Map<string, string> {
  const attributes = new Map<string, string>();
  if (!raw) return attributes;
  for (const pair of raw.split(',')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const key = pair.slice(0, eq).trim();
    if (key === '') continue;
    attributes.set(key, percentDecode(pair.slice(eq + 1).trim()));
  }
  return attributes;
}

function percentDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    // A stray '%' is more likely a literal than an encoding mistake worth dropping the value for.
    return value;
  }
}

type Entry =
  | { kind: 'script'; value: string }
  | { kind: 'module'; value: string }
  | { kind: 'jar'; value: string }
  | { kind: 'mainClass'; value: string };

interface ArgSyntax {
  /** Options that take the next argument as their value unless written `--opt=value`. */
  valued: ReadonlySet<string>;
  /** Options that consume the rest of their token, never the next argument. */
  attachedOnly?: ReadonlySet<string>;
  /** Options that consume only the digits right after them (`perl -l0 -wle`). */
  attachedDigits?: ReadonlySet<string>;
  /** Options whose presence means the program text is on the command line, so there is no file to name. */
  inline: ReadonlySet<string>;
  /** Options whose value is the entry point. */
  entry?: ReadonlyMap<string, Entry['kind']>;
  /** What a bare argument is. */
  positional: Entry['kind'];
  /** Single-dash options may be bundled (`-uB`), a valued one taking the rest of the token. */
  bundledShortOptions: boolean;
  /** Words that precede the script rather than being it (`deno run x.ts`). */
  subcommands?: ReadonlySet<string>;
  /** `@file` arguments hold more options. */
  argFiles?: boolean;
}

const set = (...items: string[]): ReadonlySet<string> => new Set(items);

const SYNTAX: Record<InterpreterFamily, ArgSyntax> = {
  node: {
    valued: set(
      '-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions',
      '--inspect-port', '--debug-port', '--title', '--env-file', '--input-type', '--redirect-warnings',
      '--disable-warning', '--watch-path', '--openssl-config', '--icu-data-dir', '--diagnostic-dir',
      '--report-dir', '--unhandled-rejections', '--dns-result-order', '--max-http-header-size',
      '--secure-heap', '--secure-heap-min', '--heapsnapshot-signal', '--trace-event-categories',
      '--trace-event-file-pattern', '--cpu-prof-dir', '--cpu-prof-name', '--heap-prof-dir', '--heap-prof-name',
      '--preload', '-c', '--config', '--import-map', '--lock', '--cert', '--location', '--seed',
    ),
    inline: set('-e', '--eval', '-p', '--print'),
    positional: 'script',
    bundledShortOptions: false,
    subcommands: set('run', 'serve', 'inspect'),
  },
  python: {
    valued: set('-X', '-W', '--check-hash-based-pycs'),
    inline: set('-c'),
    entry: new Map([['-m', 'module']]),
    positional: 'script',
    bundledShortOptions: true,
  },
  ruby: {
    valued: set('-r', '-I', '-C', '-E', '--encoding'),
    attachedOnly: set('-x', '-W', '-F', '-T', '-K'),
    attachedDigits: set('-0'),
    inline: set('-e'),
    entry: new Map([['-S', 'script']]),
    positional: 'script',
    bundledShortOptions: true,
  },
  perl: {
    valued: set('-I'),
    attachedOnly: set('-M', '-m', '-i', '-x', '-d', '-D', '-C', '-F'),
    attachedDigits: set('-l', '-0'),
    inline: set('-e', '-E'),
    positional: 'script',
    bundledShortOptions: true,
  },
  php: {
    valued: set('-d', '-c', '-z', '-t', '-S'),
    inline: set('-r', '-B', '-R', '-E'),
    entry: new Map([['-f', 'script']]),
    positional: 'script',
    bundledShortOptions: true,
  },
  java: {
    valued: set(
      '-cp', '-classpath', '--class-path', '-p', '--module-path', '--upgrade-module-path', '--add-modules',
      '--add-opens', '--add-exports', '--add-reads', '--patch-module', '--limit-modules',
    ),
    inline: set(),
    entry: new Map<string, Entry['kind']>([['-jar', 'jar'], ['-m', 'module'], ['--module', 'module']]),
    positional: 'mainClass',
    bundledShortOptions: false,
    argFiles: true,
  },
};

function findEntry(args: readonly string[], syntax: ArgSyntax): Entry | undefined {
  const entryOf = (kind: Entry['kind'], value: string | undefined): Entry | undefined =>
    value ? { kind, value } : undefined;
  let sawSubcommand = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return entryOf(syntax.positional, args[i + 1]);
    if (arg === '-') return undefined;
    if (!arg.startsWith('-')) {
      if (syntax.argFiles && arg.startsWith('@')) continue;
      if (!sawSubcommand && syntax.subcommands?.has(arg)) {
        sawSubcommand = true;
        continue;
      }
      return entryOf(syntax.positional, arg);
    }
    if (arg.startsWith('--') || !syntax.bundledShortOptions) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg : arg.slice(0, eq);
      if (syntax.inline.has(name)) return undefined;
      const kind = syntax.entry?.get(name);
      if (kind) return entryOf(kind, eq === -1 ? args[++i] : arg.slice(eq + 1));
      if (eq === -1 && syntax.valued.has(name)) i++;
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const option = `-${arg[j]}`;
      const rest = arg.slice(j + 1);
      if (syntax.inline.has(option)) return undefined;
      const kind = syntax.entry?.get(option);
      if (kind) return entryOf(kind, rest || args[++i]);
      if (syntax.valued.has(option)) {
        if (rest === '') i++;
        break;
      }
      if (syntax.attachedOnly?.has(option)) break;
      if (syntax.attachedDigits?.has(option)) {
        while (/[0-9]/.test(arg[j + 1] ?? '')) j++;
      }
    }
  }
  return undefined;
}

/** File names that say nothing about the service, so the directory holding them is the better name. */
const GENERIC_SCRIPT_NAMES = set(
  'index', 'main', 'app', 'server', '__main__', '__init__', 'manage', 'run', 'start', 'wsgi', 'asgi',
);

/** Directory names too common to name a service by; the search continues upwards past them. */
const GENERIC_DIRECTORY_NAMES = set(
  'src', 'lib', 'dist', 'build', 'out', 'bin', 'app', 'apps', 'srv', 'server', 'api', 'code', 'www', 'public',
  'usr', 'local', 'opt', 'home', 'root', 'var', 'tmp', 'workspace', 'workdir', 'current', 'service', 'services',
);

const MAX_DIRECTORY_LEVELS = 3;

const SCRIPT_EXTENSIONS = set(
  '.js', '.mjs', '.cjs', '.jsx', '.ts', '.mts', '.cts', '.tsx',
  '.py', '.pyc', '.pyw', '.pyz', '.rb', '.pl', '.pm', '.php', '.phar',
);

function nameFromCommandLine(family: InterpreterFamily, info: ProcessInfo, environ: Map<string, string>): string | undefined {
  const entry = findEntry(info.cmdline.slice(1), SYNTAX[family]);
  if (entry === undefined) return processTitle(info);
  switch (entry.kind) {
    case 'module':
      return entry.value.split('/')[0] || undefined;
    case 'mainClass':
      return entry.value.slice(entry.value.lastIndexOf('.') + 1) || undefined;
    case 'jar':
      return (
        path.posix
          .basename(entry.value)
          .replace(/\.jar$/i, '')
          // Release versions change on every deploy; the service does not.
          .replace(/-\d+(?:\.\d+)*(?:[-.][A-Za-z0-9]+)*$/, '') || undefined
      );
    case 'script':
      return nameFromScript(entry.value, info.cwd ?? environ.get('PWD'));
  }
}

function nameFromScript(script: string, cwd: string | undefined): string | undefined {
  const isDirectory = script === '.' || script === '..' || script.endsWith('/');
  let resolved: string;
  if (path.posix.isAbsolute(script)) resolved = path.posix.normalize(script);
  else if (cwd !== undefined && path.posix.isAbsolute(cwd)) resolved = path.posix.resolve(cwd, script);
  else resolved = path.posix.normalize(script);
  resolved = resolved.replace(/\/+$/, '');

  if (isDirectory) return usefulDirectoryName(resolved) ?? plainName(path.posix.basename(resolved));

  const base = path.posix.basename(resolved);
  const extension = path.posix.extname(base);
  const stem = SCRIPT_EXTENSIONS.has(extension.toLowerCase()) ? base.slice(0, -extension.length) : base;
  if (stem === '') return undefined;
  if (!GENERIC_SCRIPT_NAMES.has(stem)) return stem;
  return usefulDirectoryName(path.posix.dirname(resolved)) ?? stem;
}

function usefulDirectoryName(directory: string): string | undefined {
  let current = directory;
  for (let level = 0; level < MAX_DIRECTORY_LEVELS; level++) {
    const name = plainName(path.posix.basename(current));
    if (name === undefined) return undefined;
    if (!GENERIC_DIRECTORY_NAMES.has(name) && !/^v?\d+(?:[._-]\d+)*$/.test(name)) return name;
    current = path.posix.dirname(current);
  }
  return undefined;
}

function plainName(name: string): string | undefined {
  return name === '' || name === '.' || name === '..' || name === '/' ? undefined : name;
}

/**
 * A program that rewrote its argv (process.title, setproctitle) named itself;
 * "gunicorn: master [orders]" becomes "gunicorn".
 */
function processTitle(info: ProcessInfo): string | undefined {
  const argv0 = info.cmdline[0]?.trim();
  if (!argv0) return undefined;
  const word = argv0.split(/[:\s]/)[0]!;
  const name = path.posix.basename(word);
  if (name === '' || interpreterFamily(name) !== undefined || name === info.exeName) return undefined;
  return name;
}
