/**
 * Spools no running process owns any more: a hub that ran as one process
 * kept its spool at `$PULSEWIRE_DATA_DIR/spool`; a hub of N workers keeps one
 * per worker at `$PULSEWIRE_DATA_DIR/workers/<n>/spool`. When the number of
 * workers changes between runs, the spools of slots that no longer exist
 * still hold acknowledged readings. They are drained into InfluxDB here, by
 * the primary process, and removed once empty; a spool that cannot be drained
 * now (InfluxDB down) is left for the next start, nothing is lost.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { REMEMBERED_SEQS } from '../gateway/accepted-seqs.js';
import { connectInflux } from './influx-connection.js';
import type { StorageLogger } from './logger.js';
import { Spool } from './spool.js';
import { SpoolDrainer } from './spool-drainer.js';
import { PointWriter } from './writer.js';

/** A spool nobody will open, and the directory to remove once it is empty. */
export type OrphanSpool = { spool: string; remove: string };

/** The spools under `dataDir` that a hub of `workers` processes will not open. */
export async function orphanSpools(dataDir: string, workers: number): Promise<OrphanSpool[]> {
  const found: OrphanSpool[] = [];
  const single = path.join(dataDir, 'spool');
  if (workers > 1 && existsSync(single)) found.push({ spool: single, remove: single });
  const slots = path.join(dataDir, 'workers');
  if (existsSync(slots)) {
    for (const name of await readdir(slots)) {
      const slot = Number(name);
      const spool = path.join(slots, name, 'spool');
      if (Number.isInteger(slot) && (workers === 1 || slot > workers) && existsSync(spool)) found.push({ spool, remove: path.join(slots, name) });
    }
  }
  return found;
}

/** Finds and drains what an earlier run with another number of workers left (never rejects: logged, retried next start). */
export async function drainLeftoverSpools(dataDir: string, workers: number, influxUrl: string, options: { logger: StorageLogger; batchPoints: number }): Promise<void> {
  try {
    const orphans = await orphanSpools(dataDir, workers);
    if (orphans.length > 0) await drainOrphanSpools(orphans, influxUrl, options);
  } catch (err) {
    options.logger.warn({ err: (err as Error).message }, 'spools of an earlier run not drained; tried again at the next start');
  }
}

/**
 * Writes each spool's readings to InfluxDB and removes it when empty. Gives
 * up on a spool (keeping it) when it has not shrunk for `stuckMs`.
 */
export async function drainOrphanSpools(orphans: readonly OrphanSpool[], influxUrl: string, options: { logger: StorageLogger; batchPoints: number; stuckMs?: number }): Promise<void> {
  const { logger } = options;
  const stuckMs = options.stuckMs ?? 60_000;
  for (const { spool: dir, remove } of orphans) {
    const storage = connectInflux(influxUrl);
    const writer = new PointWriter(storage, { maxBatchPoints: options.batchPoints, logger });
    const spool = Spool.open(dir, { maxBytes: Number.MAX_SAFE_INTEGER, windowSize: REMEMBERED_SEQS, logger });
    const drainer = new SpoolDrainer(spool, writer, { batchPoints: 2 * options.batchPoints, logger });
    const before = spool.stats.entries;
    logger.info({ dir, entries: before }, 'draining a spool left by an earlier run into InfluxDB');
    drainer.start();
    let last = before;
    let lastChange = Date.now();
    while (spool.stats.entries > 0 && Date.now() - lastChange < stuckMs) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (spool.stats.entries !== last) {
        last = spool.stats.entries;
        lastChange = Date.now();
      }
    }
    const left = spool.stats.entries;
    await drainer.stop(5000);
    await writer.close();
    await spool.close();
    if (left === 0) {
      await rm(remove, { recursive: true, force: true });
      logger.info({ dir, entries: before }, 'spool of an earlier run drained and removed');
    } else {
      logger.warn({ dir, left }, 'spool of an earlier run not fully drained (InfluxDB unreachable?); kept for the next start');
    }
  }
}
