import { describe, expect, it } from 'vitest';
import { BacklogPacer } from '../../src/storage/backlog-pacer.js';

function setup() {
  const source = { backlogPoints: 0, deliveryFailing: false };
  const pacer = new BacklogPacer(source, { highWaterPoints: 100, lowWaterPoints: 50 });
  return { source, pacer };
}

describe('BacklogPacer', () => {
  it('lets ACKs through while the backlog is under the high-water mark', () => {
    const { source, pacer } = setup();
    source.backlogPoints = 100;
    expect(pacer.admit()).toBeUndefined();
  });

  it('holds ACKs above the high-water mark until the backlog is under the low-water mark', async () => {
    const { source, pacer } = setup();
    source.backlogPoints = 101;
    let released = 0;
    void pacer.admit()!.then(() => released++);
    void pacer.admit()!.then(() => released++);
    expect(pacer.waiting).toBe(2);
    source.backlogPoints = 60;
    pacer.update();
    await Promise.resolve();
    expect(released).toBe(0);
    // New arrivals queue behind the waiting ones even under the high mark (hysteresis).
    expect(pacer.admit()).toBeInstanceOf(Promise);
    source.backlogPoints = 50;
    pacer.update();
    await new Promise((r) => setTimeout(r, 0));
    expect(released).toBe(2);
    expect(pacer.waiting).toBe(0);
    expect(pacer.pacedTotal).toBe(3);
  });

  it('stands aside while delivery fails, so the spool can buffer an outage', async () => {
    const { source, pacer } = setup();
    source.backlogPoints = 1000;
    const held = pacer.admit();
    expect(held).toBeInstanceOf(Promise);
    source.deliveryFailing = true;
    pacer.update();
    await expect(held).resolves.toBeUndefined();
    expect(pacer.admit()).toBeUndefined();
  });
});
