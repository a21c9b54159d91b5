/**
 * The shipped nginx config (deploy/nginx/pulsewire.conf) in a real nginx, in
 * front of two small HTTP + WebSocket servers standing in for hub nodes: what
 * the hubs rely on from their load balancer, proved through it.
 */
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { MAX_WAIT_SECONDS } from '../../src/api/commands.js';
import { OPERATOR_BODY_LIMIT_BYTES } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { MAX_WAIT_S } from '../../src/gateway/http/plugin.js';
import { SUBPROTOCOL } from '../../src/protocol/messages.js';
import { freePort } from '../../src/storage/influxd-config.js';
import { startNginx, type TestNginx } from '../support/nginx.js';
import { waitFor } from '../support/wait.js';

type Hello = { node: string; protocol: string; forwardedFor: string | undefined; host: string | undefined };

/** A stand-in hub node: greets each WebSocket with who it is, echoes, streams SSE, reports headers. */
class FakeNode {
  readonly sockets = new Set<WebSocket>();
  upgradeAttempts = 0;
  /** A draining hub resets new upgrades (src/gateway/plugin.ts, preClose). */
  draining = false;
  sseEnded: boolean | undefined;
  readonly #server = http.createServer((req, res) => this.#request(req, res));
  readonly #wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
  #releaseSse: (() => void) | undefined;

  constructor(readonly name: string) {
    this.#server.on('upgrade', (req, socket: Socket, head) => {
      this.upgradeAttempts += 1;
      if (this.draining) return socket.destroy();
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.add(ws);
        ws.on('close', () => this.sockets.delete(ws));
        ws.on('message', (data) => ws.send(`${this.name}:${String(data)}`));
        const hello: Hello = { node: name, protocol: ws.protocol, forwardedFor: header(req, 'x-forwarded-for'), host: req.headers.host };
        ws.send(JSON.stringify(hello));
      });
    });
  }

  get address(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
  }

  /** Ends the open SSE response. */
  endSse(): void {
    this.#releaseSse?.();
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url === '/headers') {
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ node: this.name, headers: req.headers }));
    } else if (req.url?.startsWith('/v1/live/sse')) {
      // Deliberately without the hub's `X-Accel-Buffering: no`: the config alone must keep it unbuffered.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: {"type":"snapshot"}\n\n');
      this.sseEnded = false;
      this.#releaseSse = () => { this.sseEnded = true; res.end('data: {"type":"bye"}\n\n'); };
    } else if (req.method === 'POST' && req.url === '/body') {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      req.on('end', () => res.setHeader('content-type', 'application/json').end(JSON.stringify({ bytes })));
    } else {
      res.statusCode = 404;
      res.end();
    }
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A device-like WebSocket through nginx, resolved with the node's greeting. */
function connect(nginx: TestNginx, path = '/v1/device'): Promise<{ ws: WebSocket; hello: Hello }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(nginx.wsUrl(path), SUBPROTOCOL);
    ws.once('error', reject);
    ws.once('message', (data) => resolve({ ws, hello: JSON.parse(String(data)) as Hello }));
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

/** Seconds of an nginx time such as `150s` or `2m`. */
function seconds(value: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(value);
  if (!match) throw new Error(`not an nginx time: ${value}`);
  const n = Number(match[1]);
  return match[2] === 'ms' ? n / 1000 : match[2] === 'm' ? n * 60 : n;
}

/** Bytes of an nginx size such as `2m` or `512k`. */
function bytes(value: string): number {
  const match = /^(\d+)([kKmMgG])?$/.exec(value);
  if (!match) throw new Error(`not an nginx size: ${value}`);
  const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]?.toLowerCase() ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

function directive(config: string, name: string): string[] {
  return [...config.matchAll(new RegExp(`^[ \\t]*${name}[ \\t]+([^;{\\n]+);`, 'gm'))].map((m) => m[1]!.trim());
}

describe('nginx with deploy/nginx/pulsewire.conf in front of two nodes', () => {
  const a = new FakeNode('A');
  const b = new FakeNode('B');
  let nginx: TestNginx;
  const open: WebSocket[] = [];

  beforeAll(async () => {
    await Promise.all([a.listen(), b.listen()]);
    nginx = await startNginx({ upstreams: [a.address, b.address] });
  });
  afterEach(async () => {
    for (const ws of open.splice(0)) ws.terminate();
    await waitFor(() => a.sockets.size === 0 && b.sockets.size === 0, { timeoutMs: 5000 });
  });
  afterAll(async () => {
    await nginx?.stop();
    await Promise.all([a.close(), b.close()]);
  });

  it('runs the shipped file with only the upstream servers and the listen address replaced', () => {
    expect(directive(nginx.config, 'server')).toEqual([a.address, b.address]);
    expect(directive(nginx.config, 'listen')).toEqual([`127.0.0.1:${nginx.port}`]);
    expect(nginx.config).toMatch(/^\s*least_conn;/m);
    expect(nginx.config).toMatch(/^\s*zone pulsewire_hubs /m);
  });

  it('keeps quiet connections longer than the ping interval, the long polls and nginx\'s 60 s default', () => {
    const { pingIntervalMs, maxMessageBytes } = loadConfig({});
    for (const name of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const values = directive(nginx.config, name).map(seconds);
      expect(values, name).toHaveLength(1);
      expect(values[0], name).toBeGreaterThan(2 * (pingIntervalMs / 1000));
      expect(values[0], name).toBeGreaterThan(Math.max(60, MAX_WAIT_S, MAX_WAIT_SECONDS));
    }
    const [bodyLimit] = directive(nginx.config, 'client_max_body_size').map(bytes);
    expect(bodyLimit).toBeGreaterThan(Math.max(OPERATOR_BODY_LIMIT_BYTES, maxMessageBytes));
  });

  it('upgrades WebSockets with the subprotocol and carries messages both ways', async () => {
    const { ws, hello } = await connect(nginx);
    open.push(ws);
    expect(hello.protocol).toBe(SUBPROTOCOL);
    expect(ws.protocol).toBe(SUBPROTOCOL);
    const echoed = nextMessage(ws);
    ws.send('reading-1');
    expect(await echoed).toBe(`${hello.node}:reading-1`);
    const live = await connect(nginx, '/v1/live');
    open.push(live.ws);
    expect(live.hello.protocol).toBe(SUBPROTOCOL);
  });

  it('spreads connections by least_conn: a node with fewer connections gets the next ones', async () => {
    const first: { ws: WebSocket; hello: Hello }[] = [];
    for (let i = 0; i < 4; i += 1) first.push(await connect(nginx));
    open.push(...first.map((c) => c.ws));
    expect(first.filter((c) => c.hello.node === 'A')).toHaveLength(2);
    expect(a.sockets.size).toBe(2);
    expect(b.sockets.size).toBe(2);
    // A loses its two: round robin would alternate, least_conn sends both new ones to A.
    for (const c of first.filter((x) => x.hello.node === 'A')) c.ws.close();
    await waitFor(() => a.sockets.size === 0, { timeoutMs: 5000 });
    const next = [await connect(nginx), await connect(nginx)];
    open.push(...next.map((c) => c.ws));
    expect(next.map((c) => c.hello.node)).toEqual(['A', 'A']);
  });

  it('passes the client address, scheme and Host; a client-sent X-Forwarded-For stays in front of it', async () => {
    const { hello, ws } = await connect(nginx);
    open.push(ws);
    expect(hello.forwardedFor).toBe('127.0.0.1');
    expect(hello.host).toBe(`127.0.0.1:${nginx.port}`);
    const res = await fetch(nginx.url('/headers'), { headers: { 'x-forwarded-for': '203.0.113.9' } });
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    // Only the last entry is nginx's own observation: a hub must trust one hop, never the whole list.
    expect(headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['host']).toBe(`127.0.0.1:${nginx.port}`);
  });

  it('streams SSE unbuffered: the first event arrives while the response is still open', async () => {
    const res = await fetch(nginx.url('/v1/live/sse?devices=dev-*'), { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const first = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no SSE event within 3 s: buffered?')), 3000)),
    ]);
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(new TextDecoder().decode(first.value)).toContain('data: {"type":"snapshot"}');
    expect([a.sseEnded, b.sseEnded]).toContain(false);
    a.endSse();
    b.endSse();
    await reader.cancel();
  });

  it('takes bodies up to the operator API limit and refuses far larger ones itself', async () => {
    const fits = await fetch(nginx.url('/body'), { method: 'POST', body: new Uint8Array(OPERATOR_BODY_LIMIT_BYTES + 1) });
    expect(await fits.json()).toMatchObject({ bytes: OPERATOR_BODY_LIMIT_BYTES + 1 });
    const huge = await fetch(nginx.url('/body'), { method: 'POST', body: new Uint8Array(3 * 1024 * 1024) });
    expect(huge.status).toBe(413);
  });
});

describe('nginx in front of a draining node', () => {
  const draining = new FakeNode('draining');
  const other = new FakeNode('other');
  let nginx: TestNginx;

  beforeAll(async () => {
    await Promise.all([draining.listen(), other.listen()]);
    draining.draining = true;
    nginx = await startNginx({ upstreams: [draining.address, other.address] });
  });
  afterAll(async () => {
    await nginx?.stop();
    await Promise.all([draining.close(), other.close()]);
  });

  it('sends reconnecting devices to the other node: a reset upgrade is retried there, unseen by the device', async () => {
    const conns = [await connect(nginx), await connect(nginx), await connect(nginx)];
    try {
      expect(conns.map((c) => c.hello.node)).toEqual(['other', 'other', 'other']);
      expect(draining.upgradeAttempts).toBeGreaterThanOrEqual(1);
    } finally {
      for (const c of conns) c.ws.terminate();
    }
  });
});

describe('the test nginx', () => {
  it('starts on another port when its port is taken before nginx binds it', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as AddressInfo).port;
    const picks = [taken];
    const node = new FakeNode('A');
    await node.listen();
    let nginx: TestNginx | undefined;
    try {
      nginx = await startNginx({ upstreams: [node.address], pickPort: async () => picks.shift() ?? freePort('127.0.0.1') });
      expect(nginx.port).not.toBe(taken);
      const res = await fetch(nginx.url('/headers'));
      expect(await res.json()).toMatchObject({ node: 'A' });
    } finally {
      await nginx?.stop();
      await node.close();
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
