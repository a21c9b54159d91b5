/**
 * Secrets never reach the log. A hub process at log level trace (everything
 * it can say) goes through a full cycle: an operator logs in with the token
 * and uses the session cookie, registers a device and gets its secret; that
 * device and one with an enrollment-derived secret connect, send readings,
 * and one answers a command; a device over the HTTP fallback; the live
 * stream over WebSocket and SSE; failed device and operator logins, a token
 * put in a URL; an operator key created, used, logged in with and revoked;
 * a device secret rotated while connected; a webhook endpoint whose URL holds
 * the receiver's token registered, failing once, then delivering; logout; shutdown. Then the whole log (stdout and stderr) is
 * searched for every secret used, as written and as it travelled (the
 * base64 of Basic credentials).
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult } from '../../src/protocol/encode.js';
import { nextCommand } from '../support/commands.js';
import { enrollmentSecret, TestDevice } from '../support/device-client.js';
import { basic, batch, HttpDevice } from '../support/http-device.js';
import { ENROLLMENT_KEY, OPERATOR_TOKEN, operatorRequest } from '../support/hub.js';
import { startHubProcess, type HubProcess } from '../support/hub-process.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { waitFor } from '../support/wait.js';
import { LiveClient, SseClient } from '../live/live-client.js';
import { Receiver } from '../webhooks/receiver.js';
import { oneReading } from './attack-helpers.js';

describe('secrets in the log', () => {
  let dataDir: string;
  let db: FreshDatabase;
  let hub: HubProcess | undefined;
  let receiver: Receiver | undefined;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-secrets-log-'));
    db = await freshDatabase('secrets_log');
  });
  afterAll(async () => {
    await hub?.kill('SIGKILL');
    await receiver?.close();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a full cycle at log level trace writes none of the secrets it used', async () => {
    hub = await startHubProcess({
      dataDir, keepStdout: true,
      env: {
        PULSEWIRE_INFLUX_URL: db.url, PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY, PULSEWIRE_LOG_LEVEL: 'trace',
        PULSEWIRE_WEBHOOK_ALLOW_PRIVATE: 'true', PULSEWIRE_WEBHOOK_BACKOFF_MS: '50', PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '100',
      },
    });
    const base = hub.baseUrl;
    const secrets: Record<string, string> = { 'operator token': OPERATOR_TOKEN, 'enrollment key': ENROLLMENT_KEY };

    // Operator: a browser session, then the bearer token.
    const login = await fetch(`${base}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: OPERATOR_TOKEN }) });
    expect(login.status).toBe(204);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    secrets['session cookie'] = cookie.slice(cookie.indexOf('=') + 1);
    expect((await fetch(`${base}/v1/devices`, { headers: { cookie } })).status).toBe(200);
    const registered = await operatorRequest(base, 'PUT', '/v1/devices/log-dev-1');
    expect(registered.status).toBe(201);
    secrets['registered device secret'] = registered.body.secret;
    secrets['enrollment-derived secret'] = enrollmentSecret('log-dev-2');
    secrets['fallback device secret'] = enrollmentSecret('log-dev-3');
    const wrongSecret = 'wrong-secret-but-still-a-secret-0123';
    const wrongToken = 'wrong-operator-token-still-a-secret-0123';
    secrets['a wrong device secret'] = wrongSecret;
    secrets['a wrong operator token'] = wrongToken;

    // A webhook endpoint: its signing secret (shown once) and a token in its URL, as chat tools' webhook URLs carry;
    // its first attempt fails (500), so the failure path runs too.
    receiver = await Receiver.start();
    receiver.mode = { kind: 'status', status: 500 };
    const urlToken = 'receiver-token-in-the-url-0123456789';
    secrets['token in a webhook URL'] = urlToken;
    const webhook = await operatorRequest(base, 'POST', '/v1/webhooks', { url: `${receiver.url}/${urlToken}?key=${urlToken}`, events: ['device.online', 'command.final'] });
    expect(webhook.status).toBe(201);
    secrets['webhook signing secret'] = webhook.body.secret;

    // Devices: a registered secret, an enrollment-derived one, the HTTP fallback; a command answered.
    const live = await LiveClient.connect(base, { cookie, origin: base });
    const sse = await SseClient.open(base);
    if (!(sse instanceof SseClient)) throw new Error(`SSE refused: ${sse.status}`);
    const registeredDevice = await TestDevice.connect(hub.deviceUrl, { id: 'log-dev-1', secret: secrets['registered device secret'] });
    const enrolledDevice = await TestDevice.connect(hub.deviceUrl, { id: 'log-dev-2' });
    registeredDevice.send(oneReading(1));
    enrolledDevice.send(oneReading(1));
    expect(await registeredDevice.next()).toEqual({ type: 2, seq: 1 });
    expect(await enrolledDevice.next()).toEqual({ type: 2, seq: 1 });
    const created = await operatorRequest(base, 'POST', '/v1/devices/log-dev-1/commands', { name: 'reboot', args: { delayS: 1 } });
    expect(created.status).toBe(202);
    const command = await nextCommand(registeredDevice);
    registeredDevice.send(encodeResult(command.commandId, 1, { ok: true }));
    const final = await operatorRequest(base, 'GET', `/v1/devices/log-dev-1/commands/${created.body.id}?wait=20`);
    expect(final.body.status).toBe('succeeded');
    const fallback = new HttpDevice(base, 'log-dev-3');
    expect((await fallback.post(batch(oneReading(7)))).status).toBe(200);
    await live.next((f) => f.type === 'events' && Array.isArray(f.readings));

    // An operator key: created (its only showing), used as a bearer token, traded for a session, revoked;
    // a device secret rotated while connected.
    const key = await operatorRequest(base, 'POST', '/v1/keys', { name: 'log-key', scope: 'operate' });
    expect(key.status).toBe(201);
    secrets['operator key'] = key.body.key;
    secrets['operator key, its secret part'] = (key.body.key as string).slice('pwk_0123456789abcdef_'.length);
    expect((await operatorRequest(base, 'GET', '/v1/devices', undefined, key.body.key)).status).toBe(200);
    const keyLogin = await fetch(`${base}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: key.body.key }) });
    expect(keyLogin.status).toBe(204);
    const keyCookie = keyLogin.headers.get('set-cookie')!.split(';')[0]!;
    secrets['session cookie of the key'] = keyCookie.slice(keyCookie.indexOf('=') + 1);
    expect((await fetch(`${base}/v1/devices`, { headers: { cookie: keyCookie } })).status).toBe(200);
    expect((await operatorRequest(base, 'DELETE', `/v1/keys/${key.body.id}`)).status).toBe(204);
    expect((await operatorRequest(base, 'GET', '/v1/devices', undefined, key.body.key)).status).toBe(401);
    const rotated = await operatorRequest(base, 'PUT', '/v1/devices/log-dev-2', { graceS: 60 });
    expect(rotated.body.rotated).toBe(true);
    secrets['rotated device secret'] = rotated.body.secret;
    expect((await enrolledDevice.closed).code).toBe(4001);

    // Failures: a wrong device secret (WebSocket and HTTP), a wrong token (API and login), the token in a URL.
    await expect(TestDevice.connect(hub.deviceUrl, { id: 'log-dev-1', secret: wrongSecret })).rejects.toMatchObject({ status: 401 });
    expect((await new HttpDevice(base, 'log-dev-1', wrongSecret).post(batch(oneReading(8)))).status).toBe(401);
    expect((await operatorRequest(base, 'GET', '/v1/devices', undefined, wrongToken)).status).toBe(401);
    expect((await fetch(`${base}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: wrongToken }) })).status).toBe(401);
    expect((await fetch(`${base}/v1/devices?token=${OPERATOR_TOKEN}`)).status).toBe(401);

    await waitFor(() => receiver!.arrived >= 1, { what: 'a webhook attempt refused by the receiver' });
    receiver.mode = { kind: 'ok' };
    await waitFor(() => receiver!.received.some((r) => r.event.type === 'command.final'), { what: 'webhook deliveries' });

    // Logout, disconnects, shutdown (its log lines too).
    expect((await fetch(`${base}/v1/logout`, { method: 'POST', headers: { cookie, origin: base } })).status).toBe(204);
    await registeredDevice.close();
    await live.close();
    sse.close();
    expect(await hub.kill('SIGTERM')).toBe(0);
    // After 'exit' its pipes may still hold the last lines.
    if (!hub.child.stdout!.readableEnded) await once(hub.child.stdout!, 'end');

    const log = `${hub.stdout()}\n${hub.stderr()}`;
    // The log is the hub's (at trace the cycle says no more than at info: request logging is off): lines from
    // each part of the cycle are there to be searched.
    for (const said of ['log-dev-1', 'log-dev-2', 'log-dev-3', 'device handshake refused', 'operator login refused', 'webhook endpoint registered']) expect(log, said).toContain(said);

    const forms: Array<[string, string]> = [];
    for (const [name, secret] of Object.entries(secrets)) {
      forms.push([name, secret]);
      forms.push([`${name}, URL-encoded`, encodeURIComponent(secret)]);
    }
    for (const [id, secret] of [['log-dev-1', secrets['registered device secret']], ['log-dev-2', secrets['enrollment-derived secret']], ['log-dev-3', secrets['fallback device secret']], ['log-dev-1', wrongSecret]] as const) {
      forms.push([`Basic credentials of ${id}`, basic(id, secret).slice('Basic '.length)]);
    }
    const leaks = forms.filter(([, text]) => log.includes(text)).map(([name]) => name);
    expect(leaks).toEqual([]);
  }, 120_000);
});
