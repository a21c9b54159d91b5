/**
 * Paces one job's rollout: walks its target list in order and hands each
 * device not yet served to `step`, at most `perSecond` commands per second.
 * Slots are laid out from the moment the rollout (re)started, so a slow
 * `step` does not slow the rate down and the rate is never exceeded. A device
 * that `step` skipped (no command created) does not use a slot.
 */
export type RolloutStep = (deviceId: string) => Promise<'dispatched' | 'skipped'>;

export class Rollout {
  readonly #targets: readonly string[];
  readonly #served: ReadonlySet<string>;
  readonly #intervalMs: number;
  readonly #step: RolloutStep;
  readonly #now: () => number;
  #stopped = false;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `served`: devices that already got a command or were skipped (before a restart); never handed out again. */
  constructor(deps: { targets: readonly string[]; served: ReadonlySet<string>; perSecond: number; step: RolloutStep; now?: () => number }) {
    this.#targets = deps.targets;
    this.#served = deps.served;
    this.#intervalMs = 1000 / deps.perSecond;
    this.#step = deps.step;
    this.#now = deps.now ?? Date.now;
  }

  /** Resolves true when every target was handed out, false when stopped first. */
  async run(): Promise<boolean> {
    const startedAt = this.#now();
    let slot = 0;
    for (const deviceId of this.#targets) {
      if (this.#served.has(deviceId)) continue;
      await this.#sleep(startedAt + slot * this.#intervalMs - this.#now());
      if (this.#stopped) return false;
      if ((await this.#step(deviceId)) === 'dispatched') slot++;
    }
    return !this.#stopped;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }
}
