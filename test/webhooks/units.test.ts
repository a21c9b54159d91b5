/**
 * The pure parts of webhooks: which addresses the SSRF policy refuses, which
 * bus events become which webhook events and who wants them, the retry
 * delays, and the signature header's shape.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkEndpointAddress, isRefusedAddress, parseWebhookUrl } from '../../src/webhooks/address-policy.js';
import { toOccurrence, wants } from '../../src/webhooks/events.js';
import { WebhookDeliverer } from '../../src/webhooks/deliverer.js';
import { signatureHeader } from '../../src/webhooks/signature.js';
import type { WebhookRecord } from '../../src/webhooks/types.js';
import type { CommandView } from '../../src/commands/types.js';
import type { JobView } from '../../src/jobs/types.js';
import type { AlertView } from '../../src/alerts/types.js';
import { isPulsewireError } from '../../src/errors/catalog.js';
import { loadConfig } from '../../src/config/index.js';

describe('address policy', () => {
  it('refuses loopback, private, link-local, metadata, CGNAT, multicast and mapped forms; allows public addresses', () => {
    for (const address of [
      '127.0.0.1', '127.1.2.3', '10.0.0.5', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'fd00:ec2::254', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
      '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', '2002:7f00:1::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', 'fec0::1', 'not-an-address',
    ]) expect(isRefusedAddress(address), address).toBe(true);
    for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8']) {
      expect(isRefusedAddress(address), address).toBe(false);
    }
  });

  it('checks every address a name resolves to, and literal addresses without resolving', async () => {
    const resolve = async (host: string) => (host === 'mixed.test'
      ? [{ address: '93.184.216.34', family: 4 }, { address: '10.1.2.3', family: 4 }]
      : [{ address: '93.184.216.34', family: 4 }]);
    await expect(checkEndpointAddress(new URL('https://public.test/x'), resolve)).resolves.toBeUndefined();
    await expect(checkEndpointAddress(new URL('https://mixed.test/x'), resolve)).rejects.toSatisfy((err) => isPulsewireError(err, 'PW_ERR_WEBHOOK_ADDRESS_REFUSED') && /10\.1\.2\.3/.test(String(err)));
    await expect(checkEndpointAddress(new URL('http://[::1]:8080/'), resolve)).rejects.toSatisfy((err) => isPulsewireError(err, 'PW_ERR_WEBHOOK_ADDRESS_REFUSED'));
    const failing = async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }); };
    await expect(checkEndpointAddress(new URL('https://nowhere.test/'), failing)).rejects.toSatisfy((err) => isPulsewireError(err, 'PW_ERR_WEBHOOK_URL') && /ENOTFOUND/.test(String(err)));
  });

  it('accepts only http(s) URLs without credentials or fragments', () => {
    expect(parseWebhookUrl('https://ops.example.com/hook?x=1').href).toBe('https://ops.example.com/hook?x=1');
    for (const raw of ['ftp://x.example/', 'https://user:pw@x.example/', 'https://x.example/#frag', 'not a url', 'file:///etc/passwd']) {
      expect(() => parseWebhookUrl(raw), raw).toThrow(expect.objectContaining({ code: 'PW_ERR_WEBHOOK_URL' }));
    }
  });
});

const command = (status: CommandView['status']): CommandView => ({
  id: 'c1', deviceId: 'boiler-1', name: 'reboot', args: null, status, createdAt: '2026-01-01T00:00:00.000Z', completedAt: '2026-01-01T00:00:05.000Z', ttlMs: 1000, timeoutMs: 1000,
});
const alert: AlertView = {
  id: 'r1/boiler-1/temp', ruleId: 'r1', ruleName: 'hot', deviceId: 'boiler-1', series: 'temp', condition: { kind: 'above', threshold: 80 }, state: 'firing', value: 91, firingSince: 1_700_000_000_000,
};
const endpoint = (over: Partial<WebhookRecord>): WebhookRecord => ({
  id: 'wh_0000000000000000', url: 'https://x.example/', events: ['device.online', 'command.final', 'job.finished', 'alert.firing'], secret: 's', createdAt: 0, updatedAt: 0, paused: false, ...over,
});

describe('events', () => {
  it('maps only final command statuses and finished jobs, with once-keys', () => {
    expect(toOccurrence('command.status', { command: command('sent'), previous: 'queued' }, 1)).toBeUndefined();
    const final = toOccurrence('command.status', { command: command('failed'), previous: 'sent' }, 1)!;
    expect(final).toMatchObject({ type: 'command.final', deviceId: 'boiler-1', at: Date.parse('2026-01-01T00:00:05.000Z'), once: 'command/boiler-1/c1' });
    expect(final.data).toEqual({ command: command('failed') });
    const job = { id: 'j1', status: 'in-progress' } as JobView;
    expect(toOccurrence('job.progress', { job }, 1)).toBeUndefined();
    expect(toOccurrence('job.progress', { job: { ...job, status: 'completed' } }, 7)).toMatchObject({ type: 'job.finished', deviceId: undefined, at: 7, once: 'job/j1' });
  });

  it('keeps the offline reason and the alert as it came', () => {
    const offline = toOccurrence('device.offline', { deviceId: 'd', at: 5000, reason: 'ping-timeout' }, 1)!;
    expect(offline.data).toEqual({ deviceId: 'd', at: new Date(5000).toISOString(), reason: 'ping-timeout' });
    const firing = toOccurrence('alert.firing', { alert }, 1)!;
    expect(firing).toMatchObject({ type: 'alert.firing', deviceId: 'boiler-1', at: alert.firingSince, data: { alert } });
    const resolved = toOccurrence('alert.resolved', { alert: { ...alert, state: 'resolved', resolvedAt: 1_700_000_100_000 } }, 1)!;
    expect(resolved.at).toBe(1_700_000_100_000);
  });

  it('filters by type, pause, device ids or prefix; events without a device pass a device filter', () => {
    const online = toOccurrence('device.online', { deviceId: 'boiler-9', at: 1, remoteAddress: '127.0.0.1', method: 'websocket' }, 1)!;
    const jobDone = toOccurrence('job.progress', { job: { id: 'j', status: 'aborted' } as JobView }, 1)!;
    expect(wants(endpoint({}), online)).toBe(true);
    expect(wants(endpoint({ events: ['device.offline'] }), online)).toBe(false);
    expect(wants(endpoint({ paused: true }), online)).toBe(false);
    expect(wants(endpoint({ devicePrefix: 'boiler-' }), online)).toBe(true);
    expect(wants(endpoint({ devicePrefix: 'pump-' }), online)).toBe(false);
    expect(wants(endpoint({ deviceIds: ['boiler-9'] }), online)).toBe(true);
    expect(wants(endpoint({ deviceIds: ['boiler-8'] }), online)).toBe(false);
    expect(wants(endpoint({ deviceIds: ['boiler-8'], devicePrefix: 'boil' }), online)).toBe(true);
    expect(wants(endpoint({ devicePrefix: 'pump-' }), jobDone)).toBe(true);
  });
});

describe('retry delays', () => {
  it('double from the base up to the cap, between half and all of it', () => {
    const config = loadConfig({ PULSEWIRE_WEBHOOK_BACKOFF_MS: '1000', PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '8000' }).webhooks;
    const at = (random: number) => new WebhookDeliverer({ endpoints: undefined as never, outbox: undefined as never, config, resolve: undefined, logger: console, random: () => random });
    expect([1, 2, 3, 4, 5, 40].map((n) => at(1).backoff(n))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect([1, 2, 3, 4].map((n) => at(0).backoff(n))).toEqual([500, 1000, 2000, 4000]);
  });

  it('refuse a cap below the base, naming both variables', () => {
    expect(() => loadConfig({ PULSEWIRE_WEBHOOK_BACKOFF_MS: '5000', PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '1000' })).toThrow(/PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS.*PULSEWIRE_WEBHOOK_BACKOFF_MS/);
  });
});

describe('signature header', () => {
  it('is t=<seconds>,v1=<HMAC-SHA256 of "t.body">', () => {
    const header = signatureHeader('whsec_test', '{"a":1}', 1_700_000_000_999);
    const expected = createHmac('sha256', 'whsec_test').update('1700000000.{"a":1}').digest('hex');
    expect(header).toBe(`t=1700000000,v1=${expected}`);
  });
});
