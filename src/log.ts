/** Levels in increasing severity; a logger prints its level and everything above it. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `pretty`: `<iso time> <level> <event> key=value ...`; `json`: one JSON object per line. */
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
type Fields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  warn(event: string, fields?: Fields): void;
  error(event: string, fields?: Fields): void;
}

const noop = (): void => {};

/**
 * One line per event on stdout. Levels below the threshold are no-ops bound once, so a
 * disabled level costs a call and nothing else. Fields whose value is undefined are left
 * out (a connection closed before login has no user).
 */
export function createLogger(level: LogLevel = 'info', write: (line: string) => void = console.log, format: LogFormat = 'pretty'): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const line = format === 'json' ? jsonLine : prettyLine;
  const make = (lvl: LogLevel) =>
    LOG_LEVELS.indexOf(lvl) < threshold ? noop : (event: string, fields?: Fields) => write(line(lvl, event, fields));
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

function prettyLine(level: LogLevel, event: string, fields: Fields | undefined): string {
  let line = `${new Date().toISOString()} ${level} ${event}`;
  if (fields) for (const k in fields) if (fields[k] !== undefined) line += ` ${k}=${prettyValue(fields[k])}`;
  return line;
}

function prettyValue(value: unknown): string {
  if (typeof value === 'string') return /^[\w.:/@-]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.stack ?? value.message);
  return String(value);
}

/** `{"time":…,"level":…,"event":…, …fields}`: the fixed keys first, so they cannot be shadowed. */
function jsonLine(level: LogLevel, event: string, fields: Fields | undefined): string {
  let line = `{"time":"${new Date().toISOString()}","level":"${level}","event":${JSON.stringify(event)}`;
  if (fields) {
    for (const k in fields) {
      const value = fields[k];
      if (value === undefined || k === 'time' || k === 'level' || k === 'event') continue;
      line += `,${JSON.stringify(k)}:${jsonValue(value)}`;
    }
  }
  return `${line}}`;
}

function jsonValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.stack ?? value.message);
  if (typeof value === 'bigint') return JSON.stringify(String(value));
  try {
    return JSON.stringify(value) ?? JSON.stringify(String(value));
  } catch {
    // A cycle: a log line is no place to fail.
    return JSON.stringify(String(value));
  }
}

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
