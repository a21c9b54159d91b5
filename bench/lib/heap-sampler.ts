/**
 * V8's sampling heap profiler in another node process, driven over its
 * inspector (the process runs with `--inspect=127.0.0.1:PORT`). Unlike
 * `node --heap-prof`, which keeps only the samples of objects still alive
 * when the process exits, this keeps the samples of objects the GC already
 * collected too, so the profile says which code makes the garbage. It also
 * covers only the window between start and stop, not the startup.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class HeapSampler {
  readonly #socket: WebSocket;
  readonly #waiting = new Map<number, (result: unknown) => void>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      const reply = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: unknown };
      if (reply.id === undefined) return;
      this.#waiting.get(reply.id)?.(reply.error ? Promise.reject(new Error(JSON.stringify(reply.error))) : reply.result);
      this.#waiting.delete(reply.id);
    });
  }

  static async connect(inspectPort: number): Promise<HeapSampler> {
    const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return new HeapSampler(socket);
  }

  /** `intervalBytes`: mean bytes between samples (V8's default 32 KiB). */
  async start(intervalBytes = 32 * 1024): Promise<void> {
    await this.#call('HeapProfiler.enable');
    await this.#call('HeapProfiler.startSampling', {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops sampling and writes DIR/Heap.<time>.<pid>.heapprofile; returns the file. */
  async stopTo(dir: string, pid: number): Promise<string> {
    const { profile } = (await this.#call('HeapProfiler.stopSampling')) as { profile: unknown };
    const file = path.join(dir, `Heap.${new Date().toISOString().replace(/[:.]/g, '-')}.${pid}.heapprofile`);
    writeFileSync(file, JSON.stringify(profile));
    this.close();
    return file;
  }

  /** Detaches; a process with an inspector client attached waits for it to go before it exits. */
  close(): void {
    this.#socket.close();
  }

  #call(method: string, params: object = {}): Promise<unknown> {
    const id = this.#nextId++;
    this.#socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }
}
