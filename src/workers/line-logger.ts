/**
 * The primary process's log: JSON lines in the shape the workers' log (pino,
 * through fastify) writes, so one log stream reads alike whoever wrote a
 * line. The primary has no fastify instance of its own to log through.
 */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;

export type LineLogger = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export function lineLogger(level: string, fields: Record<string, unknown>, out: NodeJS.WritableStream = process.stdout): LineLogger {
  const threshold = LEVELS[level as keyof typeof LEVELS] ?? LEVELS.info;
  const write = (value: number) => (obj: object, msg?: string): void => {
    if (value < threshold) return;
    const line = { level: value, time: Date.now(), pid: process.pid, ...fields, ...serializable(obj), ...(msg === undefined ? {} : { msg }) };
    out.write(`${JSON.stringify(line)}\n`);
  };
  return { info: write(LEVELS.info), warn: write(LEVELS.warn), error: write(LEVELS.error) };
}

/** Errors as their message and code (JSON.stringify would write them as {}). */
function serializable(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    out[key] = value instanceof Error ? { message: value.message, ...('code' in value ? { code: (value as { code: unknown }).code } : {}) } : value;
  }
  return out;
}
