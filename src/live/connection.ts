/**
 * One operator's stream, whatever carries it (WebSocket or SSE): its filter
 * and its backpressure. Every tick the hub offers it the tick's events; it
 * looks at how many bytes are still queued on its transport and either sends
 * them, or keeps only the latest of each thing until the queue drains
 * (conflation), or gives up on a consumer that stays behind (1013).
 */
import { ERRORS, type ErrorCode } from '../errors/catalog.js';
import { LiveFilter } from './filter.js';
import { batchSize, eventsFrame, seriesKey, type LiveBatch, type LiveReading } from './types.js';

export interface LiveTransport {
  /** `seq` is given for frames a client may resume from (SSE `id:`). */
  send(text: string, seq?: number): void;
  /** Bytes accepted by send() and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** `error` names the cause where the transport has no close code to carry it (SSE's last event). */
  close(code: number, reason: string, error?: ErrorCode): void;
}

export type BackpressureLimits = {
  conflateBytes: number;
  maxBufferedBytes: number;
  /** How long a connection may stay above conflateBytes before it counts as unable to keep up. */
  stallMs: number;
  /** Most series a conflated frame holds (the hub's series bound); unbounded when unset. */
  maxSeries?: number;
};

export class LiveConnection {
  readonly transport: LiveTransport;
  readonly #limits: BackpressureLimits;
  #filter = LiveFilter.ALL;
  #pending: Conflation | undefined;
  #pendingSeq = 0;
  #behindSince: number | undefined;
  /** Bytes of the last snapshot still draining: a big fleet's snapshot must not count as falling behind. */
  #snapshotAllowance = 0;
  #closed = false;
  /** A subscribe arrived while the connection was behind: its snapshot waits until the queue drains. */
  snapshotDue = false;
  /** Its transport went away (the hub no longer sends to it). */
  detached = false;
  /** Closed by the hub for falling behind (1013), as opposed to by the client or shutdown. */
  tooSlow = false;
  framesSent = 0;
  conflatedFrames = 0;

  constructor(transport: LiveTransport, limits: BackpressureLimits) {
    this.transport = transport;
    this.#limits = limits;
  }

  get filter(): LiveFilter {
    return this.#filter;
  }

  get closed(): boolean {
    return this.#closed || this.detached;
  }

  get conflating(): boolean {
    return this.#behindSince !== undefined;
  }

  /**
   * What is held back stays: snapshots carry no commands, state or jobs, and
   * held readings are never newer than the snapshot's, so sending them after
   * it leaves the client where the snapshot put it.
   */
  setFilter(filter: LiveFilter): void {
    this.#filter = filter;
  }

  /** A snapshot may be larger than the byte bound on its own; the bound applies on top of it until it drained. */
  sendSnapshot(text: string, seq: number): void {
    this.snapshotDue = false;
    this.#snapshotAllowance = Math.max(this.#snapshotAllowance, text.length);
    this.send(text, seq);
  }

  /**
   * What an SSE resume replays instead of a snapshot gets the same allowance:
   * a minute of a busy fleet's events can exceed a low byte bound, and a
   * client that resumes is no slower than one that got a snapshot.
   */
  sendReplay(frames: readonly { text: string; seq: number }[]): void {
    let bytes = 0;
    for (const frame of frames) bytes += frame.text.length;
    this.#snapshotAllowance = Math.max(this.#snapshotAllowance, bytes);
    for (const frame of frames) this.send(frame.text, frame.seq);
  }

  send(text: string, seq?: number): void {
    if (this.#closed) return;
    this.framesSent++;
    this.transport.send(text, seq);
  }

  /**
   * Called once per tick for every connection; `batch` is undefined when
   * nothing happened, so a connection that was behind still gets its
   * conflated frame once its queue drains. `shared` is the unfiltered frame,
   * serialized at most once per tick for all connections without a filter.
   */
  tick(now: number, seq: number, batch: LiveBatch | undefined, shared: () => string): void {
    if (this.#closed) return;
    const buffered = this.transport.bufferedAmount;
    if (buffered > this.#limits.maxBufferedBytes + this.#snapshotAllowance) return this.#tooSlow(`${buffered} bytes queued`);
    if (buffered <= this.#limits.conflateBytes) this.#snapshotAllowance = 0;
    const mine = batch === undefined ? undefined : this.#filter.apply(batch);
    const hasEvents = mine !== undefined && batchSize(mine) > 0;
    if (buffered > this.#limits.conflateBytes) {
      this.#behindSince ??= now;
      if (hasEvents) {
        this.#pending ??= new Conflation(this.#limits.maxSeries);
        this.#pending.add(mine);
        this.#pendingSeq = seq;
      }
      if (now - this.#behindSince > this.#limits.stallMs) this.#tooSlow(`behind for ${now - this.#behindSince} ms`);
      return;
    }
    this.#behindSince = undefined;
    if (this.#pending) {
      if (hasEvents) this.#pending.add(mine);
      // Filtered again: a subscribe since may have narrowed what this client wants.
      const frame = eventsFrame(hasEvents ? seq : this.#pendingSeq, this.#filter.apply(this.#pending.toBatch()), true);
      this.#pending = undefined;
      this.conflatedFrames++;
      this.send(frame, hasEvents ? seq : this.#pendingSeq);
    } else if (hasEvents) {
      this.send(this.#filter.all ? shared() : eventsFrame(seq, mine, false), seq);
    }
  }

  close(code: number, reason: string, error?: ErrorCode): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = undefined;
    this.transport.close(code, reason, error);
  }

  #tooSlow(why: string): void {
    this.tooSlow = true;
    this.close(ERRORS.PW_ERR_LIVE_TOO_SLOW.close, `${ERRORS.PW_ERR_LIVE_TOO_SLOW.message}: ${why}`);
  }
}

/**
 * What a connection that fell behind is owed: only the latest of each thing
 * (a series' newest reading, a device's last status, a command's or job's
 * last view, a device's last reported and desired state). Its size is bounded
 * by the number of series and devices, not by time, so a stalled consumer
 * costs the hub a fixed amount however long it stalls.
 */
export class Conflation {
  readonly #readings = new Map<string, LiveReading>();
  readonly #maxSeries: number;
  /** Readings of series past the bound, left out (they are stored; the history API has them). */
  droppedSeries = 0;

  /** `maxSeries` holds a stalled consumer's cost to the hub's own series bound, however many names a fleet invents. */
  constructor(maxSeries = Number.POSITIVE_INFINITY) {
    this.#maxSeries = maxSeries;
  }
  readonly #status = new Map<string, LiveBatch['status'][number]>();
  readonly #commands = new Map<string, LiveBatch['commands'][number]>();
  readonly #state = new Map<string, LiveBatch['state'][number]>();
  readonly #jobs = new Map<string, LiveBatch['jobs'][number]>();
  readonly #alerts = new Map<string, LiveBatch['alerts'][number]>();

  add(batch: LiveBatch): void {
    for (const reading of batch.readings) {
      const key = seriesKey(reading.device, reading.name);
      const current = this.#readings.get(key);
      if (current !== undefined) {
        if (current.t > reading.t) continue;
        // Re-inserting moves the series to the end: the frame lists series in order of last change.
        this.#readings.delete(key);
      } else if (this.#readings.size >= this.#maxSeries) {
        this.droppedSeries++;
        continue;
      }
      this.#readings.set(key, reading);
    }
    for (const status of batch.status) replace(this.#status, status.device, status);
    for (const command of batch.commands) replace(this.#commands, command.id, command);
    for (const change of batch.state) replace(this.#state, `${change.kind}\u0000${change.device}`, change);
    for (const job of batch.jobs) replace(this.#jobs, job.id, job);
    // An alert that fired and resolved while the consumer was behind: its last state is what it needs.
    for (const alert of batch.alerts) replace(this.#alerts, alert.id, alert);
  }

  get empty(): boolean {
    return this.#readings.size + this.#status.size + this.#commands.size + this.#state.size + this.#jobs.size + this.#alerts.size === 0;
  }

  toBatch(): LiveBatch {
    return {
      readings: [...this.#readings.values()],
      status: [...this.#status.values()],
      commands: [...this.#commands.values()],
      state: [...this.#state.values()],
      jobs: [...this.#jobs.values()],
      alerts: [...this.#alerts.values()],
    };
  }
}

function replace<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
}
