/**
 * A job's progress: its commands counted by status, and the abort rule.
 * Pure bookkeeping, fed from `command.status` events (and from the store on
 * start-up), so it is unit-tested without a hub.
 */
import { FINAL_COMMAND_STATUSES, type CommandStatus } from '../commands/types.js';
import { FAILURE_STATUSES } from './types.js';

export type AbortRule = { abortThresholdPct: number; abortMinFinished: number };

export class JobProgress {
  readonly counts: Partial<Record<CommandStatus, number>> = {};
  dispatched = 0;
  skipped = 0;

  /** A command of the job was created (`previous` undefined) or changed status. */
  apply(previous: CommandStatus | undefined, status: CommandStatus): void {
    if (previous === undefined) this.dispatched++;
    else this.#add(previous, -1);
    this.#add(status, 1);
  }

  /** Commands whose final status counts for the abort rule: succeeded or failed ones, not cancelled. */
  get finished(): number {
    return (this.counts.succeeded ?? 0) + this.failures;
  }

  get failures(): number {
    let n = 0;
    for (const status of FAILURE_STATUSES) n += this.counts[status] ?? 0;
    return n;
  }

  /** Every command created so far has reached a final state. */
  get settled(): boolean {
    let final = 0;
    for (const status of FINAL_COMMAND_STATUSES) final += this.counts[status] ?? 0;
    return final === this.dispatched;
  }

  /** Why the job must abort, or undefined: more than the threshold failed, once enough finished. */
  abortReason(rule: AbortRule): string | undefined {
    const { finished, failures } = this;
    if (finished === 0 || finished < rule.abortMinFinished) return undefined;
    const pct = (100 * failures) / finished;
    if (pct <= rule.abortThresholdPct) return undefined;
    return `${failures} of ${finished} finished commands failed (${round(pct)}%), more than abortThresholdPct ${rule.abortThresholdPct}`;
  }

  #add(status: CommandStatus, delta: number): void {
    const next = (this.counts[status] ?? 0) + delta;
    if (next === 0) delete this.counts[status];
    else this.counts[status] = next;
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
