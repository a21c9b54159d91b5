import type { IPoint } from 'influx';
import { InfluxDB } from 'influx';
import { WRITE_PRECISION } from '../../src/storage/schema.js';

/**
 * The line protocol node-influx sends for these points, captured without a server: the hub's own
 * serialiser is checked byte for byte against it, and the schema's points through it.
 */
export async function nodeInfluxBody(points: IPoint[]): Promise<string> {
  const influx = new InfluxDB({ database: 'x' });
  let body = '';
  // Reach the serialised body through the pool, node-influx's one HTTP door.
  (influx as unknown as { _pool: { discard(o: { body: string }): Promise<void> } })._pool.discard = async (o) => {
    body = o.body;
  };
  await influx.writePoints(points, { precision: WRITE_PRECISION });
  return body;
}
