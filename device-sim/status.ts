/**
 * Progress while the fleet runs. On a terminal: one line rewritten in place
 * every second. Otherwise (CI logs, `| tee`): a plain line every 5 s, since
 * carriage returns would make a log unreadable.
 */
import type { Snapshot } from './fleet.js';
import type { Stats, Tally } from './stats.js';

/** A fleet, or (with --processes) the sum of its processes' latest reports. */
export type StatusSource = { stats: Stats; snapshot(): Snapshot; readonly size: number };

/** Failed connects by reason, most frequent first: "ECONNREFUSED 3400, http 503 12" (the rest summed as "other"). */
export function reasons(tally: Tally, shown = 4): string {
  const entries = Object.entries(tally).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const head = entries.slice(0, shown).map(([why, n]) => `${why} ${n}`);
  const rest = entries.slice(shown).reduce((sum, [, n]) => sum + n, 0);
  return [...head, ...(rest ? [`other ${rest}`] : [])].join(', ');
}
export type StatusMode = 'auto' | 'plain' | 'off';

export class StatusLine {
  readonly #source: StatusSource;
  readonly #out: NodeJS.WriteStream;
  readonly #live: boolean;
  #timer: NodeJS.Timeout | undefined;
  #lastSent = 0;
  #lastAt = Date.now();

  constructor(source: StatusSource, mode: StatusMode, out: NodeJS.WriteStream = process.stdout) {
    this.#source = source;
    this.#out = out;
    this.#live = mode === 'auto' && out.isTTY === true;
    if (mode !== 'off') this.#timer = setInterval(() => this.#print(), this.#live ? 1_000 : 5_000);
  }

  /** The current line, without control characters. */
  line(now = Date.now()): string {
    const { stats } = this.#source;
    const snap = this.#source.snapshot();
    const rate = ((stats.sent - this.#lastSent) * 1000) / Math.max(1, now - this.#lastAt);
    this.#lastSent = stats.sent;
    this.#lastAt = now;
    const acks = stats.acks;
    const other = stats.acked - (acks[0] ?? 0) - (acks[1] ?? 0);
    const commands = Object.values(stats.commands).reduce((a, b) => a + b, 0);
    const elapsed = Math.round((now - stats.startedAt) / 1000);
    const failures = reasons(stats.connectFailures);
    return [
      `${elapsed}s`,
      `devices ${snap.connected}/${this.#source.size} connected, ${snap.connecting} connecting${snap.notStarted ? `, ${snap.notStarted} to start` : ''}`,
      // While the hub is down every device is here, being refused: say so, rather than "0 connecting, errors 0".
      `${snap.waiting} waiting to reconnect`,
      ...(failures ? [`connect failures: ${failures}`] : []),
      `${rate.toFixed(0)} msg/s`,
      `acked ${acks[0] ?? 0} (${acks[1] ?? 0} dup${other ? `, ${other} other` : ''})`,
      `in flight ${snap.inFlight}`,
      `resent ${stats.resent}`,
      `commands ${commands}`,
      `errors ${stats.errorCount}`,
    ].join(' | ');
  }

  #print(): void {
    if (this.#live) this.#out.write(`\r${this.line()}\x1b[K`);
    else this.#out.write(`${new Date().toISOString()} ${this.line()}\n`);
  }

  /** Stops the updates and leaves the cursor on a fresh line. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#live) this.#out.write('\n');
  }
}
