/**
 * One device's WebSocket connection: decodes frames, hands TELEMETRY to the
 * intake, sends ACKs, applies the in-flight window, and reports how the
 * connection ended. Listeners are attached in the constructor, before any
 * await, so no early frame is lost.
 */
import type { WebSocket, RawData } from 'ws';
import { PulsewireError } from '../errors/catalog.js';
import type { Claim } from '../presence/device-presence.js';
import type { OfflineReason } from '../events/bus.js';
import { decodeDeviceFrame, decodeTelemetryFrame, encodeAck, encodeHubMessage } from '../protocol/codec.js';
import type { DeviceMessage, HubMessage, ReportedMessage, ResultMessage } from '../protocol/messages.js';
import type { AckOutcome, DeviceRuntime, DeviceSessionHandle } from './device-runtime.js';
import { frameFingerprint } from './accepted-seqs.js';
import type { Pingable } from './liveness.js';
import type { TelemetryIntake } from './telemetry-intake.js';
import type { DeviceLimit, DeviceRateLimiter } from './device-rates.js';

/** Protocol section 3: a device may have up to 32 unacknowledged TELEMETRY messages. */
export const MAX_IN_FLIGHT = 32;

export interface SessionHost {
  readonly intake: TelemetryIntake;
  /** Per-device rates: REPORTED counts against the message rate (TELEMETRY is counted by the intake). */
  readonly rates?: DeviceRateLimiter;
  /** A per-device limit closed the connection. */
  limited?(limit: DeviceLimit): void;
  readonly logger: { error(obj: object, msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  frameRejected(code: string): void;
  received(type: DeviceMessage['type']): void;
  pong(session: DeviceSession): void;
  /** RESULT and REPORTED go to the commands and state services. */
  result(deviceId: string, message: ResultMessage): void;
  reported(deviceId: string, message: ReportedMessage): void;
  /** The connection is gone; `reason` says why (the hub's reason when the hub ended it). */
  ended(session: DeviceSession, reason: OfflineReason, detail: string | undefined): void;
}

export class DeviceSession implements DeviceSessionHandle, Pingable {
  readonly deviceId: string;
  readonly connectedAt = Date.now();
  readonly remoteAddress: string;
  /** Set by the gateway once accepted: see accept-order.ts. */
  acceptOrder: number | undefined;
  /** The device's rotation count when this connection authenticated (credential-watch.ts). */
  credentialsVersion: number | undefined;
  claim: Promise<Claim | undefined> | undefined = undefined;
  readonly #socket: WebSocket;
  readonly #runtime: DeviceRuntime;
  readonly #host: SessionHost;
  #inFlight = 0;
  #paused = false;
  #corked = false;
  /** Set when the hub decides to end the session, so `close` reports the hub's reason. */
  #endReason: { reason: OfflineReason; detail: string | undefined } | undefined;
  /** Set while the connection waits to take its device over (takeover.ts): called at its first sign of life. */
  #onFirstLife: (() => void) | undefined;

  constructor(socket: WebSocket, runtime: DeviceRuntime, remoteAddress: string, host: SessionHost) {
    this.deviceId = runtime.deviceId;
    this.remoteAddress = remoteAddress;
    this.#socket = socket;
    this.#runtime = runtime;
    this.#host = host;
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('pong', () => {
      this.#alive();
      host.pong(this);
    });
    socket.on('ping', () => { this.#alive(); });
    socket.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    socket.on('error', (err) => {
      // ws reports protocol violations (e.g. maxPayload) here and closes with the right code itself.
      const tooBig = (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      if (tooBig) host.frameRejected('PW_ERR_FRAME_TOO_BIG');
      this.#endReason ??= { reason: 'error', detail: tooBig ? `message too big: ${err.message}` : err.message };
    });
  }

  /** The runtime this session was made with (DeviceRuntimes.attach puts it back if it was forgotten meanwhile). */
  get runtime(): DeviceRuntime {
    return this.#runtime;
  }

  get heldByHub(): boolean {
    return this.#paused;
  }

  ping(): void {
    this.#socket.ping();
  }

  /**
   * Pings at once and calls `onAlive` at the first pong or frame (a ping too).
   * It runs before that frame is processed, so the frame is handled after the
   * takeover it caused, in order; nothing is buffered.
   */
  awaitSignOfLife(onAlive: () => void): void {
    this.#onFirstLife = onAlive;
    this.#socket.ping();
  }

  onPingTimeout(): void {
    this.#endReason ??= { reason: 'ping-timeout', detail: undefined };
    this.#socket.terminate();
  }

  end(closeCode: number, reason: string, offlineReason: OfflineReason): void {
    this.#endReason ??= { reason: offlineReason, detail: reason };
    this.#socket.close(closeCode, reason);
  }

  /**
   * Per message: false when it was never handed to the socket (the session
   * is closing or gone), else true once ws called back. True also when the
   * callback reports an error: the frames of one tick go out corked, in one
   * writev, and a writev that fails part-way fails every callback of it
   * while its first frames may have reached the device. At most once
   * counts those as sent (they time out unless answered), never as unsent.
   */
  deliver(messages: HubMessage[]): Promise<boolean[]> {
    if (!this.isOpen || this.#endReason) return Promise.resolve(messages.map(() => false));
    // All encoded first: an encoding error then means nothing was handed over.
    const frames = messages.map((message) => encodeHubMessage(message));
    this.#corkUntilNextTick();
    return Promise.all(frames.map((frame) => {
      if (!this.isOpen) return false;
      return new Promise<boolean>((resolve) => {
        this.#socket.send(frame, (err) => {
          if (err) this.#host.logger.debug({ deviceId: this.deviceId, err: err.message }, 'hub message write failed after it was handed to the socket; counted as sent');
          resolve(true);
        });
      });
    }));
  }

  /** Drops the TCP connection without a close handshake (shutdown stragglers). */
  terminate(): void {
    this.#socket.terminate();
  }

  get isOpen(): boolean {
    return this.#socket.readyState === this.#socket.OPEN;
  }

  get isClosed(): boolean {
    return this.#socket.readyState === this.#socket.CLOSED;
  }

  onClosed(listener: () => void): void {
    if (this.isClosed) listener();
    else this.#socket.once('close', listener);
  }

  /** False while the connection still waits to take over (it was dropped, or is closing). */
  #alive(): boolean {
    const onAlive = this.#onFirstLife;
    if (!onAlive) return true;
    // A connection the hub is closing, or that sent its close frame, is no sign of a device to switch to.
    if (this.#endReason || !this.isOpen) return false;
    this.#onFirstLife = undefined;
    onAlive();
    return true;
  }

  /**
   * A fault of the hub while handling a frame (a bug, a service that threw)
   * ends this device's session with 1011, and only this one: thrown out of
   * ws's 'message' listener it would have been an uncaught exception, the
   * end of the hub and every device on it. The device is told no more than
   * "hub internal error"; the log has the rest.
   */
  #onMessage(data: RawData, isBinary: boolean): void {
    try {
      this.#handleMessage(data, isBinary);
    } catch (err) {
      this.#internalError(err);
    }
  }

  #internalError(err: unknown): void {
    if (this.#endReason?.detail?.startsWith('PW_ERR_INTERNAL')) return;
    const error = new PulsewireError('PW_ERR_INTERNAL');
    this.#host.frameRejected(error.code);
    this.#host.logger.error({ deviceId: this.deviceId, err }, 'closing device: hub internal error while handling its message');
    this.#endReason ??= { reason: 'error', detail: `${error.code}: ${(err as Error)?.message ?? String(err)}` };
    if (this.isOpen) this.#socket.close(error.spec.close!, error.closeReason);
  }

  #handleMessage(data: RawData, isBinary: boolean): void {
    if (this.#endReason) return; // closing: frames still in the pipe are not processed
    if (!this.#alive()) return; // dropped before it took over: its frames belong to no session
    const runtime = this.#runtime;
    runtime.messagesIn++;
    runtime.lastSeen = Date.now();
    if (!isBinary) return this.#reject(new PulsewireError('PW_ERR_TEXT_FRAME'));
    const bytes = asBytes(data);
    // TELEMETRY in its usual encoding keeps its pack as bytes (no Map per record); anything else as before.
    const message = decodeTelemetryFrame(bytes) ?? decodeDeviceFrame(bytes);
    if (message instanceof PulsewireError) return this.#reject(message);
    this.#host.received(message.type);
    switch (message.type) {
      case 1:
        this.#track(this.#host.intake.accept(runtime, message.seq, message.pack, frameFingerprint(bytes)), message.seq);
        return;
      case 'bare-pack':
        void this.#host.intake.acceptBare(runtime, message.pack).then((outcome) => this.#afterBarePack(outcome)).catch((err: unknown) => this.#internalError(err));
        return;
      case 4:
        this.#host.result(this.deviceId, message);
        return;
      case 5: {
        const limited = this.#host.rates?.takeMessage(runtime);
        if (limited) {
          this.#host.limited?.(limited.limit);
          return this.#reject(new PulsewireError('PW_ERR_RATE_LIMITED', `REPORTED: ${limited.error.detail}`));
        }
        this.#host.reported(this.deviceId, message);
        return;
      }
    }
  }

  #track(outcome: Promise<AckOutcome>, seq: number): void {
    if (++this.#inFlight >= MAX_IN_FLIGHT && !this.#paused) {
      // Backpressure by not reading: TCP slows the device down, nothing is dropped.
      this.#paused = true;
      this.#socket.pause();
    }
    void outcome.then((result) => {
      this.#inFlight--;
      if (this.#paused && this.#inFlight < MAX_IN_FLIGHT) {
        this.#paused = false;
        this.#socket.resume();
      }
      if (!this.isOpen) return;
      this.#corkUntilNextTick();
      this.#socket.send(encodeAck(seq, result.code, result.code === 0 ? undefined : result.reason));
    }, (err: unknown) => {
      // Not stored, not answered: the device keeps the message and resends it after reconnecting.
      this.#inFlight--;
      this.#internalError(err);
    });
  }

  /**
   * One spool commit settles many of a device's messages at once; corking the
   * TCP socket until the next tick sends their ACKs in one write instead of one
   * system call each (measured: 9% of the hub's time in writev).
   */
  #corkUntilNextTick(): void {
    if (this.#corked) return;
    const tcp = (this.#socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (!tcp) return;
    this.#corked = true;
    tcp.cork();
    process.nextTick(() => {
      this.#corked = false;
      tcp.uncork();
    });
  }

  #afterBarePack(outcome: AckOutcome): void {
    if (outcome.code === 0) return;
    // Fire-and-forget has no ACK: a malformed pack closes with 1007 so the firmware bug is visible;
    // a pack that is merely late or early, or a storage outage, is dropped with a log line. One over
    // the device's rate is dropped too, quietly: a line per dropped pack would flood the log.
    if (outcome.code === 4) {
      this.#host.logger.debug({ deviceId: this.deviceId, reason: outcome.reason }, 'bare SenML pack not stored');
      return;
    }
    this.#host.logger.warn({ deviceId: this.deviceId, code: outcome.code, reason: outcome.reason }, 'bare SenML pack not stored');
    if (outcome.code === 2 || outcome.code === 5) {
      this.#reject(new PulsewireError('PW_ERR_MESSAGE_SHAPE', `bare pack: ${outcome.reason ?? 'malformed'}`));
    }
  }

  #reject(error: PulsewireError): void {
    this.#host.frameRejected(error.code);
    this.#host.logger.info({ deviceId: this.deviceId, code: error.code, reason: error.closeReason }, 'closing device: bad message');
    // Protocol section 4 names the offline reasons; a bad frame is an 'error', its detail says which.
    this.#endReason ??= { reason: 'error', detail: `${error.code}: ${error.closeReason}` };
    this.end(error.spec.close ?? 1007, error.closeReason, 'error');
  }

  #onClose(code: number, reason: string): void {
    const ended = this.#endReason ?? { reason: 'closed by device' as const, detail: reason || `code ${code}` };
    this.#host.ended(this, ended.reason, ended.detail);
  }
}

function asBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
