/**
 * The logging surface storage needs. It is the subset of pino's API that
 * fastify's `app.log` offers, so the app can pass its logger straight in and
 * tests can pass nothing.
 */

export interface StorageLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

export const silentLogger: StorageLogger = { info: noop, warn: noop, error: noop };
