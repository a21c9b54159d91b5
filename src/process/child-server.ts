/**
 * A server program the hub runs as its own child (influxd, nats-server): found
 * on PATH or in the usual system directories, spawned, ready once a probe
 * says so, its last stderr lines kept for the error that explains a failed
 * start, optionally restarted with capped backoff when it dies, and stopped
 * with SIGTERM then SIGKILL. A parent that exits without stopping it kills
 * it, so no orphan keeps its data dir or port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { PulsewireError, type ErrorCode } from '../errors/catalog.js';
import type { StorageLogger } from '../storage/logger.js';

/** Searched after PATH: Debian puts server binaries in /usr/bin or /usr/sbin. */
const FALLBACK_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin'];
const STDERR_TAIL_LINES = 30;
const RESTART_BACKOFF_MIN_MS = 250;
const RESTART_BACKOFF_MAX_MS = 30_000;

/** The executable `name`: `explicitPath` if given (it must be executable), else the first on PATH or in the system dirs. */
export async function findBinary(name: string, missing: { code: ErrorCode; hint: string }, explicitPath?: string): Promise<string> {
  const candidates = explicitPath !== undefined
    ? [explicitPath]
    : (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean).concat(FALLBACK_DIRS).map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next one
    }
  }
  throw new PulsewireError(missing.code, explicitPath !== undefined ? `${explicitPath} is not executable; ${missing.hint}` : missing.hint);
}

export type ChildServerOptions = {
  /** For messages: "influxd", "nats-server". */
  name: string;
  binary: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** True once the server answers (one probe; called until it is, or the child exits, or time is up). */
  ready: () => Promise<boolean>;
  /** Where it says it is ready, for the error of a start that timed out. */
  readyWhere: string;
  /** Stderr lines worth a warning in the hub's log. */
  isWarning: (line: string) => boolean;
  /** The error code of a failed start. */
  failureCode: ErrorCode;
  log: StorageLogger;
  stopTimeoutMs: number;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ChildServer {
  readonly #options: ChildServerOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderrTail: string[] = [];
  #supervising = false;
  #stopping = false;
  #restarts = 0;
  #backoffMs = RESTART_BACKOFF_MIN_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  readonly #onParentExit = (): void => {
    this.#child?.kill('SIGKILL');
  };

  constructor(options: ChildServerOptions) {
    this.#options = options;
    process.on('exit', this.#onParentExit);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get stderrTail(): string {
    return this.#stderrTail.join('\n');
  }

  /** Spawns the server and resolves once it is ready; rejects (with its last stderr lines) if it exits or the deadline passes. */
  async launch(readyTimeoutMs: number): Promise<void> {
    const { binary, args, env, name } = this.#options;
    this.#stderrTail = [];
    const child = spawn(binary, args, { env: env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    let exitInfo: string | undefined;
    this.#exited = new Promise((resolve) => {
      const onGone = (why: string): void => {
        if (exitInfo !== undefined) return;
        exitInfo = why;
        resolve();
        this.#onChildGone(child, why);
      };
      child.once('exit', (code, signal) => onGone(signal ? `killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (err) => onGone(`failed to spawn: ${err.message}`));
    });
    this.#captureStderr(child);
    const deadline = Date.now() + readyTimeoutMs;
    while (exitInfo === undefined && Date.now() < deadline) {
      if (await this.#options.ready()) return;
      await Promise.race([sleep(100), this.#exited]);
    }
    if (exitInfo === undefined) child.kill('SIGKILL');
    await this.#exited;
    const why = exitInfo ?? `did not answer on ${this.#options.readyWhere} within ${readyTimeoutMs} ms`;
    throw new PulsewireError(this.#options.failureCode, `${name} ${why}; last stderr lines:\n${this.stderrTail}`);
  }

  /** From now on an unexpected exit is restarted (same arguments) with capped exponential backoff. */
  supervise(): void {
    this.#supervising = true;
    this.#backoffMs = RESTART_BACKOFF_MIN_MS;
  }

  /** Ends the current process with `signal` (SIGKILL after the stop timeout) and waits for it; not restarted. */
  async terminate(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const supervising = this.#supervising;
    this.#supervising = false;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), this.#options.stopTimeoutMs);
    await this.#exited;
    clearTimeout(timer);
    this.#supervising = supervising && !this.#stopping;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    await this.terminate(signal);
    process.off('exit', this.#onParentExit);
  }

  #onChildGone(child: ChildProcess, why: string): void {
    if (child !== this.#child || !this.#supervising || this.#stopping) return;
    const delayMs = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, RESTART_BACKOFF_MAX_MS);
    this.#options.log.error({ why, delayMs, stderr: this.stderrTail }, `managed ${this.#options.name} died unexpectedly; restarting`);
    this.#restartTimer = setTimeout(() => void this.#restart(), delayMs);
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    this.#restarts += 1;
    try {
      // Same arguments, so the same port: the URL handed out stays valid.
      await this.launch(30_000);
      this.#backoffMs = RESTART_BACKOFF_MIN_MS;
      this.#options.log.info({ childPid: this.pid, restarts: this.#restarts }, `managed ${this.#options.name} restarted`);
    } catch (err) {
      // No new timer here: launch() killed or lost the child, and its exit schedules the next attempt.
      if (!this.#stopping) this.#options.log.error({ err }, `managed ${this.#options.name} restart failed`);
    }
  }

  #captureStderr(child: ChildProcess): void {
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.#stderrTail.push(line);
        if (this.#options.isWarning(line)) this.#options.log.warn({ [this.#options.name]: line }, this.#options.name);
      }
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.splice(0, this.#stderrTail.length - STDERR_TAIL_LINES);
    });
  }
}
