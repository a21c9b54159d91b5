/**
 * The latency target (issues 4 and 19) is judged over every round of the hub
 * at half its maximum, not over the best one: a pure unit test of the rule on
 * made-up figures (the harness test runs the scenario itself).
 */
import { describe, expect, it } from 'vitest';
import { latencyTargets, LATENCY_DEFAULTS, type HubStep, type LatencyResult } from '../../bench/scenarios/latency.js';

const figures = (p99: number) => ({ count: 1000, mean: p99 / 4, p50: p99 / 5, p90: p99 / 2, p99, p999: p99 * 1.2, max: p99 * 1.3 });

const hubStep = (p99: number, overrides: Partial<HubStep> = {}): HubStep => ({
  ackedMessagesPerSecond: 10_000, latencyMs: figures(p99), blocked: 0, unacknowledged: 0, nonZeroAcks: 0,
  cpu: { percent: 60, microsPerMessage: 50 }, spoolCommits: { count: 4000, p99AtMostMs: 25, over50Ms: 0 }, ...overrides,
});

function result(rounds: HubStep[]): LatencyResult {
  const step = (share: number, hub: HubStep) => ({
    share, offeredMessagesPerSecond: 20_000 * share, hub,
    ceilingA: { ackedMessagesPerSecond: 20_000 * share, latencyMs: figures(3), blocked: 0, cpu: { percent: 20, microsPerMessage: 15 } },
  });
  return {
    scenario: 'latency', machine: {} as never, placement: {} as never, options: { ...LATENCY_DEFAULTS, log: undefined } as never,
    maxMessagesPerSecond: 20_000, maxReadingsPerSecond: 200_000, maxCpu: { percent: 80, microsPerMessage: 30 },
    steps: [step(0.1, hubStep(10, { ackedMessagesPerSecond: 2000 })), step(0.5, rounds[0]!), step(0.9, hubStep(900, { ackedMessagesPerSecond: 17_000 }))],
    halfRounds: rounds, targets: [],
  };
}

describe('latency target', () => {
  it('is met only when every round at 50% has its p99 under 50 ms, and names each round', () => {
    const [met] = latencyTargets(result([hubStep(41), hubStep(48.2), hubStep(44)]));
    expect(met).toMatchObject({ met: true });
    expect(met!.target).toContain('3 of 3');
    expect(met!.figure).toContain('p99 41.0, 48.2, 44.0 ms in 3 rounds');

    const [one] = latencyTargets(result([hubStep(41), hubStep(61.5), hubStep(44)]));
    expect(one!.met).toBe(false);
    expect(one!.figure).toContain('2 of 3 under 50 ms');
  });

  it('is not met by a round whose p99 is low because its ACKs were refused or not sent in time', () => {
    expect(latencyTargets(result([hubStep(20), hubStep(20, { nonZeroAcks: 3 }), hubStep(20)]))[0]!.met).toBe(false);
    expect(latencyTargets(result([hubStep(20), hubStep(20), hubStep(20, { ackedMessagesPerSecond: 9000 })]))[0]!.met).toBe(false);
  });

  it('reads a result written before the rounds existed as one round, the 50% step', () => {
    const old = { ...result([hubStep(30)]), halfRounds: undefined } as unknown as LatencyResult;
    expect(latencyTargets(old)[0]).toMatchObject({ met: true, target: expect.stringContaining('1 of 1') });
  });
});
