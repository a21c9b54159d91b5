/**
 * What a simulated device does with COMMAND and DESIRED (protocol section 3).
 * Pure decisions: given the message and the device's settings, which RESULT
 * to answer, which settings change, and what to put in REPORTED. The device
 * (sim-device.ts) sends the bytes; keeping this apart keeps that file about
 * connections and the window, and lets a test check every branch directly.
 */
import { ResultStatus } from '../src/protocol/index.js';

/** The settings a device reports and the hub can change. */
export type Settings = { intervalS: number; led: boolean };

/** set_interval bounds: 10 ms (load tests) to a day. */
export const MIN_INTERVAL_S = 0.01;
export const MAX_INTERVAL_S = 86_400;
/** echo's delayMs stays below the hub's default command timeout (30 s). */
export const MAX_ECHO_DELAY_MS = 25_000;

export type CommandOutcome = {
  /** RESULT status to send now. */
  status: number;
  payload?: unknown;
  /** Settings after the command (unchanged when rejected). */
  changed?: Partial<Settings>;
  /** reboot: close with 1000, pause, reconnect, then send RESULT 1. */
  reboot?: boolean;
  /** echo: send the RESULT this many ms later instead of at once (firmware that works before it answers). */
  delayMs?: number;
  /** For the summary: succeeded, rejected or received. */
  outcome: 'succeeded' | 'rejected' | 'received';
};

/** A field of a CBOR map as decoded (Map) or of a plain object. */
export function field(container: unknown, key: string): unknown {
  if (container instanceof Map) return container.get(key);
  if (typeof container === 'object' && container !== null) return (container as Record<string, unknown>)[key];
  return undefined;
}

function validInterval(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= MIN_INTERVAL_S && x <= MAX_INTERVAL_S;
}

const rejected = (error: string): CommandOutcome => ({ status: ResultStatus.REJECTED, payload: { error }, outcome: 'rejected' });

export function handleCommand(name: string, args: unknown): CommandOutcome {
  switch (name) {
    case 'set_interval': {
      const seconds = field(args, 'seconds');
      if (!validInterval(seconds)) return rejected(`seconds must be a number from ${MIN_INTERVAL_S} to ${MAX_INTERVAL_S}`);
      return { status: ResultStatus.SUCCEEDED, payload: { interval: seconds }, changed: { intervalS: seconds }, outcome: 'succeeded' };
    }
    case 'set_led': {
      const on = field(args, 'on');
      if (typeof on !== 'boolean') return rejected('on must be true or false');
      return { status: ResultStatus.SUCCEEDED, payload: { led: on }, changed: { led: on }, outcome: 'succeeded' };
    }
    case 'echo': {
      // For measuring the command path itself (bench `commands`): no setting changes, no REPORTED.
      const delayMs = field(args, 'delayMs') ?? 0;
      if (typeof delayMs !== 'number' || !(delayMs >= 0 && delayMs <= MAX_ECHO_DELAY_MS)) return rejected(`delayMs must be a number from 0 to ${MAX_ECHO_DELAY_MS}`);
      return { status: ResultStatus.SUCCEEDED, payload: args ?? null, delayMs, outcome: 'succeeded' };
    }
    case 'reboot':
      // Received now; the final RESULT 1 goes out after the device is back (sim-device.ts).
      return { status: ResultStatus.RECEIVED, reboot: true, outcome: 'received' };
    default:
      return rejected(`unknown command ${JSON.stringify(name).slice(0, 40)}`);
  }
}

/**
 * The settings a DESIRED state asks for, keeping only keys this firmware
 * knows with values it accepts (others are ignored, so the operator's delta
 * keeps showing them as not applied).
 */
export function applyDesired(state: unknown): Partial<Settings> {
  const changed: Partial<Settings> = {};
  const interval = field(state, 'interval');
  if (validInterval(interval)) changed.intervalS = interval;
  const led = field(state, 'led');
  if (typeof led === 'boolean') changed.led = led;
  return changed;
}

/** REPORTED uses the protocol's own names (interval in seconds, led), not the TypeScript ones. */
export function reportedPatch(settings: Partial<Settings>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  if (settings.intervalS !== undefined) patch.interval = settings.intervalS;
  if (settings.led !== undefined) patch.led = settings.led;
  return patch;
}
