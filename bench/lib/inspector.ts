/**
 * A client of another node process's inspector (Chrome DevTools Protocol
 * over WebSocket): the bench starts the hub with `inspector: true`
 * (hub-process.ts) and reads its URL from the hub's stderr. Used for a full
 * GC from outside (connections) and the sampling heap profiler (ingest-cpu).
 * A process with a client attached waits for it to go before it exits, so
 * close() before stopping the process.
 */
import WebSocket from 'ws';

export class InspectorClient {
  readonly #socket: WebSocket;
  readonly #waiting = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      const reply = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: unknown };
      const waiter = reply.id === undefined ? undefined : this.#waiting.get(reply.id);
      if (!waiter) return;
      this.#waiting.delete(reply.id!);
      if (reply.error) waiter.reject(new Error(JSON.stringify(reply.error)));
      else waiter.resolve(reply.result);
    });
    socket.once('close', () => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error('inspector closed before answering'));
      this.#waiting.clear();
    });
  }

  /** `url`: the ws:// URL the process printed ("Debugger listening on ..."). */
  static async connect(url: string): Promise<InspectorClient> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return new InspectorClient(socket);
  }

  call(method: string, params: object = {}): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#socket.close();
  }
}

/** A full, compacting GC in the process behind `url`. */
export async function collectGarbage(url: string): Promise<void> {
  const client = await InspectorClient.connect(url);
  try {
    await client.call('HeapProfiler.collectGarbage');
  } finally {
    client.close();
  }
}

/** The JS heap left after a full, compacting GC (what the process keeps alive), and how long the GC call took. */
export async function heapAfterFullGc(url: string): Promise<{ usedBytes: number; totalBytes: number; gcMs: number }> {
  const client = await InspectorClient.connect(url);
  try {
    const started = performance.now();
    await client.call('HeapProfiler.collectGarbage');
    const gcMs = performance.now() - started;
    const usage = (await client.call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    return { usedBytes: usage.usedSize, totalBytes: usage.totalSize, gcMs };
  } finally {
    client.close();
  }
}
