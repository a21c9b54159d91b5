/**
 * V8's sampling heap profiler in another node process, driven over its
 * inspector (inspector.ts; the hub started with `inspector: true`). Unlike
 * `node --heap-prof`, which keeps only the samples of objects still alive
 * when the process exits, this keeps the samples of objects the GC already
 * collected too, so the profile says which code makes the garbage. It also
 * covers only the window between start and stop, not the startup.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InspectorClient } from './inspector.js';

export class HeapSampler {
  readonly #client: InspectorClient;

  private constructor(client: InspectorClient) {
    this.#client = client;
  }

  /** `inspectorUrl`: the hub's (HubProcess.inspectorUrl, started with `inspector: true`). */
  static async connect(inspectorUrl: string): Promise<HeapSampler> {
    return new HeapSampler(await InspectorClient.connect(inspectorUrl));
  }

  /** `intervalBytes`: mean bytes between samples (V8's default 32 KiB). */
  async start(intervalBytes = 32 * 1024): Promise<void> {
    await this.#client.call('HeapProfiler.enable');
    await this.#client.call('HeapProfiler.startSampling', {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops sampling and writes DIR/Heap.<time>.<pid>.heapprofile; returns the file. */
  async stopTo(dir: string, pid: number): Promise<string> {
    const { profile } = (await this.#client.call('HeapProfiler.stopSampling')) as { profile: unknown };
    // As node's --cpu-prof-dir does: the directory is made when missing.
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `Heap.${new Date().toISOString().replace(/[:.]/g, '-')}.${pid}.heapprofile`);
    writeFileSync(file, JSON.stringify(profile));
    this.close();
    return file;
  }

  /** Detaches; a process with an inspector client attached waits for it to go before it exits. */
  close(): void {
    this.#client.close();
  }
}
