/** Parsers for single environment variables; each error names the variable and what it allows. */
import { PulsewireError } from '../errors/catalog.js';

export type Env = Readonly<Record<string, string | undefined>>;

export function configError(variable: string, value: string, allowed: string): PulsewireError {
  return new PulsewireError('PW_ERR_CONFIG', `${variable}=${JSON.stringify(value)} is not allowed; expected ${allowed}`);
}

/** Unset and empty both mean "use the default": `FOO= npm start` should not be an error. */
export function envString(env: Env, name: string, opts: { minLength?: number } = {}): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (opts.minLength !== undefined && raw.length < opts.minLength) {
    throw configError(name, '<hidden>', `at least ${opts.minLength} characters`);
  }
  return raw;
}

/**
 * A comma-separated list (surrounding spaces trimmed); empty items are refused, not skipped,
 * since `a,,b` is more likely a mistake than a wish. `hidden`: secrets are never echoed in the error.
 */
export function envList(env: Env, name: string, opts: { minLength?: number; hidden?: boolean } = {}): string[] | undefined {
  const raw = envString(env, name);
  if (raw === undefined) return undefined;
  const items = raw.split(',').map((item) => item.trim());
  items.forEach((item, i) => {
    if (item === '' || (opts.minLength !== undefined && item.length < opts.minLength)) {
      const what = opts.minLength !== undefined ? `items of at least ${opts.minLength} characters` : 'non-empty items';
      throw configError(name, opts.hidden ? '<hidden>' : raw, `a comma-separated list of ${what} (item ${i + 1} is not)`);
    }
  });
  return [...new Set(items)];
}

export function envInteger(env: Env, name: string, range: { min: number; max: number }): number | undefined {
  const raw = envString(env, name);
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < range.min || value > range.max) {
    throw configError(name, raw, `a whole number from ${range.min} to ${range.max}`);
  }
  return value;
}

export function envBoolean(env: Env, name: string): boolean | undefined {
  const raw = envString(env, name);
  if (raw === undefined) return undefined;
  const lowered = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lowered)) return true;
  if (['0', 'false', 'no', 'off'].includes(lowered)) return false;
  throw configError(name, raw, 'true or false');
}

export function envUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = envString(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw configError(name, raw, `a URL (${protocols.join(' or ')})`);
  }
  if (!protocols.includes(url.protocol)) throw configError(name, raw, `a URL with scheme ${protocols.join(' or ')}`);
  return raw;
}
