/**
 * What a hub's primary process and its workers tell each other over the IPC
 * channel node:cluster gives them, and the worker's side of the hub-wide
 * /metrics: a worker asks the primary, which gathers every worker's registry
 * (prom-client's AggregatorRegistry) and answers with the sum.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

export type WorkerMessage =
  | { type: 'pulsewire:listening'; address: string; capacity: number | undefined }
  | { type: 'pulsewire:metrics?'; id: number };

export type PrimaryMessage = { type: 'pulsewire:metrics'; id: number; text: string; contentType: string };

/** How long a worker waits for the hub's metrics before it answers with its own. */
const METRICS_WAIT_MS = 8000;

export type HubMetricsSource = (local: Registry) => () => Promise<{ text: string; contentType: string }>;

/**
 * In a worker: makes `local` answer the primary's collection, and returns
 * what /metrics serves: the whole hub's metrics, or (primary too slow) this
 * worker's own, labelled so.
 */
export function workerMetricsSource(): HubMetricsSource {
  return (local) => {
    AggregatorRegistry.setRegistries([local]);
    // Constructing one installs prom-client's listener that answers the primary's requests.
    void new AggregatorRegistry();
    let next = 0;
    const waiting = new Map<number, (answer: PrimaryMessage) => void>();
    process.on('message', (message: PrimaryMessage) => {
      if (message?.type === 'pulsewire:metrics') waiting.get(message.id)?.(message);
    });
    return () => new Promise((resolve) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        void local.metrics().then((text) => resolve({ text: `# this worker only (pid ${process.pid}): the hub's primary did not answer\n${text}`, contentType: local.contentType }));
      }, METRICS_WAIT_MS);
      waiting.set(id, (answer) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve({ text: answer.text, contentType: answer.contentType });
      });
      process.send?.({ type: 'pulsewire:metrics?', id } satisfies WorkerMessage);
    });
  };
}

/** In the primary: answers each worker's request with every worker's metrics added up. */
export function serveHubMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: WorkerMessage) => {
    if (message?.type !== 'pulsewire:metrics?') return;
    void aggregator.clusterMetrics().then(
      (text) => worker.send({ type: 'pulsewire:metrics', id: message.id, text, contentType: aggregator.contentType } satisfies PrimaryMessage),
      (err: unknown) => worker.send({ type: 'pulsewire:metrics', id: message.id, text: `# hub metrics not gathered: ${(err as Error).message}\n`, contentType: aggregator.contentType } satisfies PrimaryMessage),
    );
  });
}
