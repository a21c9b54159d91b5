import { describe, expect, it } from 'vitest';
import { LoopLoad } from '../../src/gateway/loop-load.js';

const spin = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end) { /* busy */ } };
const idle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('LoopLoad (the real event loop)', () => {
  it('rises while callbacks keep the loop busy and falls once it waits for I/O again', async () => {
    const load = new LoopLoad();
    await idle(300);
    const rested = load.sample();
    expect(rested).toBeLessThan(0.5);
    // Busy: 10 turns of 40 ms of work with the loop barely waiting between them.
    for (let i = 0; i < 10; i++) {
      spin(40);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const busy = load.sample();
    expect(busy).toBeGreaterThan(0.85);
    await idle(500);
    expect(load.sample()).toBeLessThan(busy / 2);
  });
});
