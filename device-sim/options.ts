/**
 * device-sim options: one table that drives parsing, validation and --help,
 * so an option cannot exist without being explained. Values are checked once,
 * here, and a bad one is an OptionError naming the option and what it allows
 * (the CLI turns that into exit code 2).
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_MAX_RECORDS, DEVICE_PATH, isValidDeviceId } from '../src/protocol/index.js';
import { PROFILE_NAMES } from './profiles/index.js';
import { FD_MARGIN, processesFor } from './resources.js';

export type SimOptions = {
  url: string;
  /** ws: one WebSocket per device; http: the HTTP fallback (POST batches, long-poll GET). */
  transport: 'ws' | 'http';
  /** Long-poll wait of the http transport, seconds (protocol: at most 60). */
  pollWait: number;
  devices: number;
  /** Number of the first device: ids are prefix + zero-padded (first .. first+devices-1). */
  first: number;
  prefix: string;
  enrollmentKey: string | undefined;
  /** id -> secret, from --secrets FILE. Takes precedence over the enrollment key. */
  secrets: Record<string, string> | undefined;
  rate: number;
  batch: number;
  profile: string;
  ramp: number;
  duration: number;
  summary: string | undefined;
  zombies: number;
  flap: number;
  malformed: number;
  clockSkew: number;
  /** PEM contents of --ca FILE. */
  ca: Buffer | undefined;
  /** Plain status lines even on a terminal, or none at all (programmatic use). */
  status: 'auto' | 'plain' | 'off';
  /** Processes the CLI splits the fleet over (resolved from auto); runFleet is always one process. */
  processes: number;
};

export class OptionError extends Error {
  constructor(readonly option: string, detail: string) {
    super(`--${option}: ${detail}`);
  }
}

type Spec = { name: string; arg?: string; default: string; help: string };

export const MAX_DEVICES = 200_000;
/** More than this many simulator processes is a machine we should not be loading from one command. */
export const MAX_PROCESSES = 64;

/** Every option, in --help order. `default` is shown verbatim. */
export const OPTION_SPECS: readonly Spec[] = [
  { name: 'url', arg: 'URL', default: 'ws://127.0.0.1:8080/v1/device', help: 'hub device endpoint, ws:// or wss://' },
  { name: 'transport', arg: 'NAME', default: 'ws', help: 'ws (a WebSocket per device) or http (the HTTP fallback: POST batches, long-poll GET; the URL may be ws:// or http://)' },
  { name: 'poll-wait', arg: 'S', default: '20', help: 'http transport: seconds each long poll waits (1 to 60)' },
  { name: 'devices', arg: 'N', default: '10', help: 'number of simulated devices (1 to 200000)' },
  { name: 'first', arg: 'N', default: '1', help: 'number of the first device, to split one fleet over several machines (--processes splits it on one)' },
  { name: 'prefix', arg: 'TEXT', default: 'sim-', help: 'device id prefix; ids are prefix + zero-padded number (sim-00001)' },
  { name: 'enrollment-key', arg: 'KEY', default: '$PULSEWIRE_ENROLLMENT_KEY', help: 'derive each secret as base64url(HMAC-SHA256(KEY, id))' },
  { name: 'secrets', arg: 'FILE', default: 'none', help: 'JSON object {"id": "secret", ...}; used instead of the enrollment key' },
  { name: 'rate', arg: 'R', default: '0.2', help: 'TELEMETRY messages per second per device (fractions allowed, up to 100)' },
  { name: 'batch', arg: 'N', default: '4', help: `SenML records per message (1 to ${DEFAULT_MAX_RECORDS})` },
  { name: 'profile', arg: 'NAME', default: 'mixed', help: `signals: ${PROFILE_NAMES.join(', ')} (mixed = round-robin)` },
  { name: 'ramp', arg: 'R', default: '500', help: 'new connections per second for the whole fleet, also for reconnects (no storm at 50,000)' },
  { name: 'duration', arg: 'S', default: '0', help: 'seconds to run; 0 = until Ctrl-C' },
  { name: 'summary', arg: 'FILE', default: 'none', help: 'also write the final summary as JSON to FILE' },
  { name: 'zombies', arg: 'PCT', default: '0', help: 'percent of devices that never answer pings but keep TCP open' },
  { name: 'flap', arg: 'PCT', default: '0', help: 'percent of devices that drop their connection at random (every ~20 s)' },
  { name: 'malformed', arg: 'PCT', default: '0', help: 'percent of devices that now and then (~every 30 s) send an invalid frame' },
  { name: 'clock-skew', arg: 'S', default: '0', help: 'seconds added to every reading time (negative = clock behind)' },
  { name: 'ca', arg: 'FILE', default: 'system CAs', help: 'PEM CA file to verify a wss:// hub with a private CA' },
  { name: 'status', arg: 'MODE', default: 'auto', help: 'auto (live line on a terminal, else every 5 s), plain, off' },
  { name: 'processes', arg: 'N', default: 'auto', help: `processes to split the fleet over (1 to ${MAX_PROCESSES}); auto = as few as the open-files limit allows, each holding the limit minus ${FD_MARGIN} sockets (3 for 50,000 devices at 20,000; --transport http needs two per device)` },
  { name: 'help', default: '', help: 'show this help' },
];

/** Digits of the device numbers of a fleet whose last number is `last`: at least 5 (sim-00001). */
export function idWidth(last: number): number {
  return Math.max(5, String(last).length);
}

/** Device id: prefix + the number zero-padded to `width`, the same whichever process simulates it. */
export function deviceId(prefix: string, n: number, width: number): string {
  return `${prefix}${String(n).padStart(width, '0')}`;
}

/** The parseArgs configuration matching OPTION_SPECS. */
export const PARSE_CONFIG = Object.fromEntries(
  OPTION_SPECS.map((s) => [s.name, s.arg ? { type: 'string' as const } : { type: 'boolean' as const, short: 'h' }]),
);

function number(option: string, raw: string, min: number, max: number, integer: boolean): number {
  const value = Number(raw);
  const kind = integer ? 'an integer' : 'a number';
  if (raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new OptionError(option, `must be ${kind} from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function readText(option: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new OptionError(option, `cannot read ${file}: ${(err as Error).message}`);
  }
}

function parseSecrets(file: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText('secrets', file));
  } catch (err) {
    if (err instanceof OptionError) throw err;
    throw new OptionError('secrets', `${file} is not JSON: ${(err as Error).message}`);
  }
  const ok = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    && Object.values(parsed).every((v) => typeof v === 'string');
  if (!ok) throw new OptionError('secrets', `${file} must hold a JSON object of device id -> secret (strings)`);
  return parsed as Record<string, string>;
}

/**
 * Options from parsed command-line values (strings, as parseArgs gives them)
 * and the environment. Missing values take the defaults of OPTION_SPECS.
 */
export function resolveOptions(raw: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv = process.env): SimOptions {
  const get = (name: string): string => {
    const value = raw[name];
    return typeof value === 'string' ? value : OPTION_SPECS.find((s) => s.name === name)!.default;
  };
  const url = get('url');
  const transport = get('transport');
  if (transport !== 'ws' && transport !== 'http') throw new OptionError('transport', `must be ws or http, got "${transport}"`);
  // The HTTP fallback also takes the hub's ws:// device URL, so switching transports needs no new URL.
  const schemes = transport === 'http' ? ['ws:', 'wss:', 'http:', 'https:'] : ['ws:', 'wss:'];
  const wanted = transport === 'http' ? 'ws://, wss://, http:// or https://' : 'ws:// or wss://';
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw new OptionError('url', `must be a ${wanted} URL, got "${url}"`);
  }
  if (!schemes.includes(parsedUrl.protocol)) throw new OptionError('url', `must start with ${wanted}, got "${url}"`);
  checkDevicePath(parsedUrl, transport, url);

  const devices = number('devices', get('devices'), 1, MAX_DEVICES, true);
  const first = number('first', get('first'), 0, 1e9, true);
  const prefix = get('prefix');
  const last = first + devices - 1;
  // The longest id is the last one, padded: checking the bare number let 60-character prefixes through.
  if (!isValidDeviceId(deviceId(prefix, last, idWidth(last)))) {
    throw new OptionError('prefix', `ids must be 1 to 64 characters of [A-Za-z0-9._-], got "${prefix}"`);
  }
  const profile = get('profile');
  if (!(PROFILE_NAMES as readonly string[]).includes(profile)) {
    throw new OptionError('profile', `must be one of ${PROFILE_NAMES.join(', ')}, got "${profile}"`);
  }
  const status = get('status');
  if (status !== 'auto' && status !== 'plain' && status !== 'off') throw new OptionError('status', `must be auto, plain or off, got "${status}"`);
  const rawProcesses = get('processes');
  const processes = rawProcesses === 'auto'
    ? Math.min(MAX_PROCESSES, processesFor(devices, transport))
    : number('processes', rawProcesses, 1, MAX_PROCESSES, true);
  if (processes > devices) throw new OptionError('processes', `at most one per device (--devices ${devices}), got "${rawProcesses}"`);

  const secretsFile = typeof raw.secrets === 'string' ? raw.secrets : undefined;
  const secrets = secretsFile !== undefined ? parseSecrets(secretsFile) : undefined;
  const enrollmentKey = typeof raw['enrollment-key'] === 'string' ? raw['enrollment-key'] : env.PULSEWIRE_ENROLLMENT_KEY;
  if (secrets === undefined && !enrollmentKey) {
    throw new OptionError('enrollment-key', 'needed (or PULSEWIRE_ENROLLMENT_KEY, or --secrets FILE) to give devices their secrets');
  }
  const caFile = typeof raw.ca === 'string' ? raw.ca : undefined;

  return {
    url,
    transport,
    pollWait: number('poll-wait', get('poll-wait'), 1, 60, false),
    devices,
    first,
    prefix,
    enrollmentKey: enrollmentKey || undefined,
    secrets,
    rate: number('rate', get('rate'), 0.0001, 100, false),
    batch: number('batch', get('batch'), 1, DEFAULT_MAX_RECORDS, true),
    profile,
    ramp: number('ramp', get('ramp'), 1, 100_000, false),
    duration: number('duration', get('duration'), 0, 1e7, false),
    summary: typeof raw.summary === 'string' ? raw.summary : undefined,
    zombies: number('zombies', get('zombies'), 0, 100, false),
    flap: number('flap', get('flap'), 0, 100, false),
    malformed: number('malformed', get('malformed'), 0, 100, false),
    clockSkew: number('clock-skew', get('clock-skew'), -1e9, 1e9, false),
    ca: caFile !== undefined ? Buffer.from(readText('ca', caFile)) : undefined,
    status,
    processes,
  };
}

/** The text of --help, generated from OPTION_SPECS. */
export function helpText(): string {
  const rows = OPTION_SPECS.map((s) => {
    const left = `  --${s.name}${s.arg ? ` ${s.arg}` : ''}${s.name === 'help' ? ', -h' : ''}`;
    const def = s.default ? ` (default: ${s.default})` : '';
    return `${left.padEnd(30)} ${s.help}${def}`;
  });
  return [
    'pulsewire-sim: a simulated fleet of Pulsewire devices (protocol v1)',
    '',
    'usage: npm run sim -- [options]    or    pulsewire-sim [options]',
    '',
    'options:',
    ...rows,
    '',
    'Every device connects with Basic credentials and the pulsewire.v1 subprotocol, sends',
    'SenML TELEMETRY at --rate, keeps up to 32 unacknowledged messages and resends them',
    'after a reconnect, answers COMMAND (set_interval, set_led, echo, reboot) and DESIRED, and',
    'reconnects with full-jitter backoff (1 s base, 60 s cap) honouring the close codes.',
    'With --transport http the same happens over the HTTP fallback: POST batches, a long poll.',
    'Ctrl-C or the end of --duration stops sending, waits up to 10 s for outstanding ACKs,',
    'closes every connection with 1000 and prints the summary. A fleet larger than one',
    'process can hold (a socket is an open file) runs in several (--processes) with one',
    'status line and one summary. Exit codes: 0 done, 1 failed (also: one of the processes',
    'died), 2 bad option.',
    '',
  ].join('\n');
}

/** Options for programmatic use: the CLI defaults, overridden by `overrides`. */
export function withDefaults(overrides: Partial<SimOptions>): SimOptions {
  // The defaults come from OPTION_SPECS through the same parser, so the CLI and the API cannot drift apart.
  const defaults = resolveOptions({ 'enrollment-key': 'placeholder' }, {});
  return { ...defaults, enrollmentKey: undefined, status: 'off', ...overrides };
}

/**
 * The hub's device endpoint is the path /v1/device (behind a proxy, a prefix
 * before it is fine). A URL without it reached a path with no socket, was
 * refused with 404 and retried forever: say what is expected instead. The
 * HTTP fallback also takes a bare http(s)://host (it adds the path itself).
 */
function checkDevicePath(parsed: URL, transport: string, url: string): void {
  const path = parsed.pathname;
  if (path.endsWith(DEVICE_PATH)) return;
  if (transport === 'http' && (path === '/' || path.endsWith(`${DEVICE_PATH}/messages`))) return;
  const example = `${parsed.protocol}//${parsed.host}${DEVICE_PATH}`;
  throw new OptionError('url', `must end with the device path ${DEVICE_PATH}, e.g. ${example}; got "${url}"`);
}
