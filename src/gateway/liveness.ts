/**
 * One sweep for every device socket, as the ws library recommends: each sweep
 * terminates the sockets that did not answer the previous ping, then marks the
 * rest not-alive and pings them; a pong marks a socket alive again. A dead
 * device is therefore noticed between one and two intervals after its last
 * pong, with one timer for 50,000 sockets instead of 50,000 timers.
 */
export interface Pingable {
  /**
   * True while the hub itself stops reading this socket (backpressure): its
   * pong cannot be read then, so the missing pong is ours, not the device's.
   */
  readonly heldByHub?: boolean;
  ping(): void;
  /** Called when the previous ping went unanswered. */
  onPingTimeout(): void;
}

type Entry = { alive: boolean };

export class LivenessSweep<T extends Pingable> {
  readonly #tracked = new Map<T, Entry>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sweep(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  add(socket: T): void {
    this.#tracked.set(socket, { alive: true });
  }

  delete(socket: T): void {
    this.#tracked.delete(socket);
  }

  /** A pong (or any sign of life the caller trusts) from this socket. */
  markAlive(socket: T): void {
    const entry = this.#tracked.get(socket);
    if (entry) entry.alive = true;
  }

  get size(): number {
    return this.#tracked.size;
  }

  sweep(): void {
    for (const [socket, entry] of this.#tracked) {
      if (socket.heldByHub) {
        entry.alive = true; // judged again once the hub reads from it
        continue;
      }
      if (!entry.alive) {
        this.#tracked.delete(socket);
        socket.onPingTimeout();
        continue;
      }
      entry.alive = false;
      socket.ping();
    }
  }
}
