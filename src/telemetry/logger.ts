/**
 * sonde's own logs go to stderr (stdout carries the console exporter's span
 * lines): JSON lines for log shippers, or short readable lines for people.
 */
import pino, { type Logger } from 'pino';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'msg']);

export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = new Date(Number(record.time ?? Date.now())).toISOString().slice(11, 23);
  const level = LEVEL_NAMES[Number(record.level)] ?? String(record.level);
  const extras = Object.entries(record)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level.padEnd(5)} ${String(record.msg ?? '')}${extras ? `  ${extras}` : ''}`;
}

export function createLogger(options: { level: string; format: 'pretty' | 'json'; write?: (line: string) => void }): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const stream = {
    write(chunk: string): void {
      write(options.format === 'json' ? chunk : `${prettyLine(chunk.trimEnd())}\n`);
    },
  };
  return pino({ level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.epochTime }, stream);
}
