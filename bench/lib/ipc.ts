/**
 * Request/response over Node's IPC channel, so a scenario can drive the load
 * generator and the ceilings as separate processes (each pinned to its own
 * core) with plain awaits. The child side is serve(); the parent side is
 * Remote. Messages are JSON; nothing here knows what the commands mean.
 */
import { fork, type ChildProcess } from 'node:child_process';

type Request = { id: number; cmd: string; args: unknown };
type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** Child side: answers each request with its handler's result (or its error's message). */
export function serve(handlers: Record<string, (args: any) => unknown>): void {
  process.on('message', async (msg: Request) => {
    const handler = handlers[msg.cmd];
    let reply: Reply;
    try {
      if (!handler) throw new Error(`unknown command ${msg.cmd}`);
      reply = { id: msg.id, ok: true, result: await handler(msg.args) };
    } catch (err) {
      reply = { id: msg.id, ok: false, error: (err as Error).stack ?? String(err) };
    }
    process.send?.(reply);
  });
  // The parent owns our life: if it goes, so do we (no orphaned load).
  process.on('disconnect', () => process.exit(0));
}

/** Parent side: a forked TypeScript module (through tsx) that serve()s. */
export class Remote {
  readonly child: ChildProcess;
  #next = 1;
  #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  #exited: Promise<void>;

  /** `nodeFlags`: more Node options for the child (e.g. --expose-gc). */
  constructor(modulePath: string, env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []) {
    this.child = fork(modulePath, [], {
      execArgv: ['--import', 'tsx', ...nodeFlags],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`${modulePath}: ${reply.error}`));
    });
    this.#exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        for (const w of this.#pending.values()) w.reject(new Error(`${modulePath} exited (${signal ?? code})`));
        this.#pending.clear();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(cmd: string, args: unknown = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Disconnects (the child exits on its own), SIGKILL after a grace period. */
  async close(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }
}
