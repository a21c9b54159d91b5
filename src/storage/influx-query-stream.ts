/**
 * An InfluxQL query whose answer is read as InfluxDB streams it
 * (`chunked=true`: one JSON document per line, a series or a part of one
 * each), handed over a socket read at a time. node-influx reads an answer
 * whole and parses it in one go; for the live snapshot's seed at start (the
 * newest value of every series, tens of thousands of them) that was one
 * 300 ms block of the event loop, at the moment a restarted hub meets its
 * reconnecting fleet (BENCHMARKS.md, storm). Here each socket read (64 KiB,
 * a few hundred series) is parsed on its own turn of the loop.
 *
 * Times come as integers in microseconds (`epoch=u`: the precision the hub
 * writes, exact in a double). Other queries stay with node-influx
 * (influx-connection.ts), as writes of ready line protocol bypass it
 * (influx-write.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { endpointHeaders, refusalOf, type InfluxEndpoint } from './influx-write.js';

/** One series of an answer (or a part of one: a long series comes in several). */
export type StreamedSeries = {
  readonly name: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly columns: readonly string[];
  readonly values: readonly (readonly unknown[])[];
};

type Chunk = {
  error?: string;
  results?: { statement_id?: number; error?: string; series?: StreamedSeries[] }[];
};

export type StreamQuery = (
  influxql: string,
  params: Readonly<Record<string, string>>,
  /** Called with the series of one socket read, in the order InfluxDB sent them. */
  onSeries: (series: readonly StreamedSeries[]) => void,
) => Promise<void>;

export function queryStreamer(target: InfluxEndpoint, timeoutMs: number): StreamQuery {
  const client = target.protocol === 'https' ? https : http;
  const headers = endpointHeaders(target);
  return (influxql, params, onSeries) =>
    new Promise<void>((resolve, reject) => {
      const query = new URLSearchParams({ db: target.database, q: influxql, params: JSON.stringify(params), chunked: 'true', epoch: 'u' });
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        request.destroy();
        reject(err);
      };
      const request = client.request({ host: target.host, port: target.port, method: 'GET', path: `/query?${query.toString()}`, headers, timeout: timeoutMs }, (response) => {
        const status = response.statusCode ?? 0;
        if (status !== 200) return refusalOf(response, status, fail);
        response.setEncoding('utf8');
        let pending = '';
        /** The series of whole lines of `text`, handed over together. */
        const take = (text: string) => {
          const series: StreamedSeries[] = [];
          for (const line of text.split('\n')) {
            if (line.trim() === '') continue;
            const chunk = JSON.parse(line) as Chunk;
            const error = chunk.error ?? chunk.results?.find((r) => r.error !== undefined)?.error;
            if (error !== undefined) throw new Error(`InfluxDB refused the query: ${error}`);
            for (const result of chunk.results ?? []) for (const one of result.series ?? []) series.push(one);
          }
          if (series.length > 0) onSeries(series);
        };
        response.on('data', (text: string) => {
          if (failed) return;
          pending += text;
          const end = pending.lastIndexOf('\n');
          if (end === -1) return;
          const complete = pending.slice(0, end);
          pending = pending.slice(end + 1);
          try {
            take(complete);
          } catch (err) {
            fail(err as Error);
          }
        });
        response.on('end', () => {
          if (failed) return;
          try {
            take(pending);
          } catch (err) {
            return fail(err as Error);
          }
          resolve();
        });
        response.on('error', fail);
      });
      request.on('timeout', () => fail(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      request.on('error', fail);
      request.end();
    });
}
