/** Levels in increasing severity; a logger prints its level and everything above it. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
type Fields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  warn(event: string, fields?: Fields): void;
  error(event: string, fields?: Fields): void;
}

const noop = (): void => {};

/**
 * One line per event on stdout: `<iso time> <level> <event> key=value ...`. Levels below the
 * threshold are no-ops bound once, so a disabled level costs a call and nothing else.
 */
export function createLogger(level: LogLevel = 'info', write: (line: string) => void = console.log): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const make = (lvl: LogLevel) =>
    LOG_LEVELS.indexOf(lvl) < threshold
      ? noop
      : (event: string, fields?: Fields) => {
          let line = `${new Date().toISOString()} ${lvl} ${event}`;
          if (fields) for (const k in fields) line += ` ${k}=${formatValue(fields[k])}`;
          write(line);
        };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[\w.:/@-]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.stack ?? value.message);
  return String(value);
}

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
