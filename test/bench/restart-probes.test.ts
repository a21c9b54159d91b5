/**
 * The storm's probes (bench/lib/restart-probes.ts, bench/lib/http-probe.ts):
 * how their samples are split at the SIGTERM, the new hub's banner and the
 * reconnect window's end, so a probe refused while no hub listened never
 * becomes a latency of the storm; and that a probe on a new connection each
 * time does open one per probe and says why it got no answer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpProbe, type ProbeSample } from '../../bench/lib/http-probe.js';
import { restartResponsiveness } from '../../bench/lib/restart-probes.js';

const sigtermAt = 10_000;
const bannerAt = 13_000;
const windowEndAt = 20_000;

const sample = (at: number, ms: number, status = 200, error?: string): ProbeSample => ({ at, ms, status, ...(error ? { error } : {}) });

describe('restartResponsiveness', () => {
  const readyz = [
    sample(9_000, 2), sample(9_800, 4), // before: steady load
    sample(10_000, 1, 503), sample(11_000, 0.3, 0, 'ECONNREFUSED'), sample(12_999, 0.2, 0, 'ECONNREFUSED'), // down
    sample(13_000, 40), sample(15_000, 250), sample(18_000, 10_000, 0, 'timeout'), sample(20_000, 8), // the window, both ends in
    sample(20_001, 1), // after the window
  ];
  const baseline = [sample(9_000, 0.5), sample(13_000, 0.7), sample(15_000, 3), sample(20_001, 0.4)];
  const r = restartResponsiveness({ readyz, healthz: [], baseline }, { sigtermAt, bannerAt, windowEndAt }, 200);

  it('times only the probes started from the banner to the window\'s end, refused or not answered ones among them', () => {
    expect(r.storm.readyz.probes).toBe(4);
    expect(r.storm.readyz.max).toBe(10_000);
    expect(r.storm.readyz.p50).toBe(40);
    expect(r.storm.readyz.outcomes).toEqual({ 200: 3, timeout: 1 });
    expect(r.storm.readyz.notOk).toBe(1);
    expect(r.storm.baseline.probes).toBe(2);
  });

  it('counts the probes from the SIGTERM to the banner apart, by outcome, refused ones named', () => {
    expect(r.down.readyz).toEqual({ probes: 3, refused: 2, outcomes: { 503: 1, ECONNREFUSED: 2 } });
    expect(r.before.readyz.probes).toBe(2);
    expect(r.before.readyz.max).toBe(4);
  });

  it('gives the banner and the window\'s end in seconds from the SIGTERM, and every /readyz probe on that scale', () => {
    expect(r.bannerS).toBe(3);
    expect(r.windowEndS).toBe(10);
    expect(r.everyMs).toBe(200);
    expect(r.readyzTimeline).toHaveLength(readyz.length);
    expect(r.readyzTimeline[3]).toEqual({ s: 1, ms: 0.3, outcome: 'ECONNREFUSED' });
  });
});

describe('HttpProbe on a new connection each time', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('opens one TCP connection per probe, and names a refused connection', async () => {
    let connections = 0;
    server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => { connections++; });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const probe = new HttpProbe(`http://127.0.0.1:${port}/readyz`, 20, 10_000, 'new');
    await expect.poll(() => probe.samples.length).toBeGreaterThanOrEqual(3);
    await probe.stop();
    expect(probe.samples.every((s) => s.status === 200)).toBe(true);
    expect(connections).toBe(probe.samples.length);

    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const refused = new HttpProbe(`http://127.0.0.1:${port}/readyz`, 20, 10_000, 'new');
    await expect.poll(() => refused.samples.length).toBeGreaterThanOrEqual(1);
    await refused.stop();
    expect(refused.samples[0]).toMatchObject({ status: 0, error: 'ECONNREFUSED' });
  });
});
