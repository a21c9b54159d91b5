/**
 * Progress while the fleet runs. On a terminal: one line rewritten in place
 * every second. Otherwise (CI logs, `| tee`): a plain line every 5 s, since
 * carriage returns would make a log unreadable.
 */
import type { Snapshot } from './fleet.js';
import type { Stats } from './stats.js';

export type StatusSource = { stats: Stats; snapshot(): Snapshot; devices: readonly unknown[] };
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
    return [
      `${elapsed}s`,
      `devices ${snap.connected}/${this.#source.devices.length} connected, ${snap.connecting} connecting`,
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
