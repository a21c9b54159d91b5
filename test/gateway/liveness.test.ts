import { describe, expect, it } from 'vitest';
import { LivenessSweep, type Pingable } from '../../src/gateway/liveness.js';

class FakeSocket implements Pingable {
  heldByHub = false;
  pings = 0;
  timedOut = false;
  ping(): void { this.pings++; }
  onPingTimeout(): void { this.timedOut = true; }
}

describe('LivenessSweep', () => {
  it('terminates a socket that did not answer the previous ping, and only that one', () => {
    const sweep = new LivenessSweep<FakeSocket>(1000);
    const healthy = new FakeSocket();
    const zombie = new FakeSocket();
    sweep.add(healthy);
    sweep.add(zombie);

    sweep.sweep(); // both pinged
    expect(healthy.pings).toBe(1);
    expect(zombie.pings).toBe(1);
    sweep.markAlive(healthy);

    sweep.sweep(); // zombie missed its pong
    expect(zombie.timedOut).toBe(true);
    expect(healthy.timedOut).toBe(false);
    expect(healthy.pings).toBe(2);
    expect(sweep.size).toBe(1);
  });

  it('notices a socket that dies right after a pong within two sweeps', () => {
    const sweep = new LivenessSweep<FakeSocket>(1000);
    const socket = new FakeSocket();
    sweep.add(socket);
    sweep.sweep();
    sweep.markAlive(socket); // last sign of life
    sweep.sweep();
    expect(socket.timedOut).toBe(false);
    sweep.sweep();
    expect(socket.timedOut).toBe(true);
  });

  it('does not time out a socket the hub itself stopped reading (backpressure), and judges it again after', () => {
    const sweep = new LivenessSweep<FakeSocket>(1000);
    const socket = new FakeSocket();
    sweep.add(socket);
    sweep.sweep(); // pinged
    socket.heldByHub = true; // its pong cannot be read now
    sweep.sweep();
    sweep.sweep();
    expect(socket.timedOut).toBe(false);
    socket.heldByHub = false;
    sweep.sweep(); // pinged again
    sweep.sweep(); // no pong: now it is the device's fault
    expect(socket.timedOut).toBe(true);
  });

  it('forgets removed sockets', () => {
    const sweep = new LivenessSweep<FakeSocket>(1000);
    const socket = new FakeSocket();
    sweep.add(socket);
    sweep.delete(socket);
    sweep.sweep();
    sweep.sweep();
    expect(socket.pings).toBe(0);
    expect(socket.timedOut).toBe(false);
  });
});
