import { pino, type Logger } from 'pino';

/** pino JSON logs on stderr (stdout stays free for a command's own output). */
export function makeLogger(component: string, level = process.env.SIBYL_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component } }, pino.destination(2));
}
