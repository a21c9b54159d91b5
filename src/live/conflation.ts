/**
 * What a connection that fell behind is owed: only the latest of each thing
 * (a series' newest reading, a device's last status, a command's or job's
 * last view, a device's last reported and desired state). Its size is bounded
 * by the number of series and devices, not by time, so a stalled consumer
 * costs the hub a fixed amount however long it stalls.
 */
import { seriesKey, type LiveBatch, type LiveReading } from './types.js';

export class Conflation {
  readonly #readings = new Map<string, LiveReading>();
  readonly #status = new Map<string, LiveBatch['status'][number]>();
  readonly #commands = new Map<string, LiveBatch['commands'][number]>();
  readonly #state = new Map<string, LiveBatch['state'][number]>();
  readonly #jobs = new Map<string, LiveBatch['jobs'][number]>();
  /** Readings left out because a newer one of the same series replaced them. */
  skipped = 0;

  add(batch: LiveBatch): void {
    for (const reading of batch.readings) {
      const key = seriesKey(reading.device, reading.name);
      const current = this.#readings.get(key);
      if (current !== undefined) {
        this.skipped++;
        if (current.t > reading.t) continue;
        // Re-inserting moves the series to the end: the frame lists series in order of last change.
        this.#readings.delete(key);
      }
      this.#readings.set(key, reading);
    }
    for (const status of batch.status) replace(this.#status, status.device, status);
    for (const command of batch.commands) replace(this.#commands, command.id, command);
    for (const change of batch.state) replace(this.#state, `${change.kind}\u0000${change.device}`, change);
    for (const job of batch.jobs) replace(this.#jobs, job.id, job);
  }

  get empty(): boolean {
    return this.#readings.size + this.#status.size + this.#commands.size + this.#state.size + this.#jobs.size === 0;
  }

  toBatch(): LiveBatch {
    return {
      readings: [...this.#readings.values()],
      status: [...this.#status.values()],
      commands: [...this.#commands.values()],
      state: [...this.#state.values()],
      jobs: [...this.#jobs.values()],
    };
  }
}

function replace<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
}
