/**
 * The baseline of the `commands` scenario: the plumbing of a command round
 * trip and nothing else. Devices connect as to the hub (same port setup,
 * holdDevices: ping sweep, ACKs); `POST /v1/devices/:id/commands?wait=S` with
 * the hub's JSON body writes a COMMAND to that device's socket at once and
 * answers when its final RESULT comes back, in the hub's response shape
 * (status, sentAt, completedAt), or 202 when the wait ends. No auth (the
 * device id is read from the Basic header, unchecked), no registry, no queue,
 * no storage, no timers per command other than the wait, no events.
 */
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import { encodeCommand } from '../../src/protocol/index.js';
import { holdDevices, listenLikeHub } from './listen-like-hub.js';
import { serve } from '../lib/ipc.js';

const FINAL: Record<number, string> = { 1: 'succeeded', 2: 'failed', 3: 'rejected' };
const PATH = /^\/v1\/devices\/([^/]+)\/commands$/;

type Pending = { view: Record<string, unknown>; res: ServerResponse; timer: NodeJS.Timeout };

let server: WebSocketServer | undefined;
let httpServer: Server | undefined;
let sweep: NodeJS.Timeout | undefined;
const sockets = new Map<string, WebSocket>();
const pending = new Map<string, Pending>();
let nextId = 1;

function deviceIdOf(req: IncomingMessage): string | undefined {
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!basic) return undefined;
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  return decoded.slice(0, decoded.indexOf(':'));
}

function answer(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://relay');
  const deviceId = PATH.exec(url.pathname)?.[1];
  if (req.method !== 'POST' || deviceId === undefined) return answer(res, 404, { error: 'not found' });
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: { name?: unknown; args?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, 400, { error: 'body is not JSON' });
    }
    const ws = sockets.get(deviceId);
    if (!ws) return answer(res, 404, { error: `${deviceId} is not connected` });
    if (typeof body.name !== 'string') return answer(res, 400, { error: 'name must be text' });
    const waitMs = Number(url.searchParams.get('wait') ?? 0) * 1000;
    const id = `r${(nextId++).toString(36)}`;
    const view: Record<string, unknown> = { id, deviceId, name: body.name, args: body.args ?? null, status: 'queued', createdAt: new Date().toISOString() };
    const timer = setTimeout(() => {
      pending.delete(id);
      answer(res, 202, view);
    }, waitMs);
    pending.set(id, { view, res, timer });
    ws.send(encodeCommand(id, body.name, body.args ?? null), (err) => {
      if (err) return;
      // RESULT can beat the write callback; the hub then marks it sent too.
      view.sentAt ??= new Date().toISOString();
      if (view.status === 'queued') view.status = 'sent';
    });
  });
}

function onResult(msg: unknown[]): void {
  const [, id, status, payload] = msg;
  const final = FINAL[status as number];
  const p = pending.get(id as string);
  if (!p || !final) return;
  pending.delete(id as string);
  clearTimeout(p.timer);
  const now = new Date().toISOString();
  Object.assign(p.view, { status: final, sentAt: p.view.sentAt ?? now, completedAt: now, ...(payload === undefined ? {} : { result: payload }) });
  answer(p.res, 200, p.view);
}

async function start(args: { pingIntervalMs: number }): Promise<{ port: number }> {
  const listening = await listenLikeHub(0, onRequest);
  server = listening.server;
  httpServer = listening.httpServer;
  server.on('connection', (ws, req) => {
    const id = deviceIdOf(req);
    if (id === undefined) return ws.close(1008, 'no Basic credentials');
    sockets.set(id, ws);
    ws.on('close', () => { if (sockets.get(id) === ws) sockets.delete(id); });
  });
  sweep = holdDevices(server, args.pingIntervalMs, (_ws, msg) => { if (msg[0] === 4) onResult(msg); });
  return { port: listening.port };
}

serve({
  start,
  clients: () => sockets.size,
  stop: () => new Promise<void>((resolve) => {
    clearInterval(sweep);
    for (const p of pending.values()) clearTimeout(p.timer);
    for (const ws of server?.clients ?? []) ws.terminate();
    server?.close();
    httpServer?.closeAllConnections();
    httpServer?.close(() => resolve());
  }),
});
