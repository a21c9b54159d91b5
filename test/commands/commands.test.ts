import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_ID_LENGTH } from '../../src/commands/command-service.js';
import { encodeCommand, encodeReported, encodeResult } from '../../src/protocol/encode.js';
import { hubHasRead, nextCommand } from '../support/commands.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

describe('commands', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_COMMAND_QUEUE_MAX: '5' });
    for (const id of ['cmd-online', 'cmd-offline', 'cmd-ttl', 'cmd-timeout', 'cmd-cancel', 'cmd-wait', 'cmd-full', 'cmd-twice', 'cmd-bad', 'cmd-edge']) {
      expect((await hub.api('PUT', `/v1/devices/${id}`)).status).toBe(201);
    }
  });
  afterAll(async () => { await hub?.close(); });

  const connect = async (id: string) => {
    const secret = (await hub.api('PUT', `/v1/devices/${id}`)).body.secret as string;
    return TestDevice.connect(hub.deviceUrl, { id, secret });
  };

  it('round trip with an online device: 202 queued, COMMAND on the wire, RESULT makes it succeeded', async () => {
    const device = await connect('cmd-online');
    const created = await hub.api('POST', '/v1/devices/cmd-online/commands', { name: 'set_interval', args: { seconds: 30 } });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ deviceId: 'cmd-online', name: 'set_interval', args: { seconds: 30 }, status: 'queued' });
    expect(created.body.id).toHaveLength(COMMAND_ID_LENGTH);
    const command = await nextCommand(device);
    expect(command).toMatchObject({ commandId: created.body.id, name: 'set_interval' });
    // Byte-exact against the protocol's COMMAND vector, with our id in place of c-01.
    const vector = Buffer.from('840364632d30316c7365745f696e74657276616ca1677365636f6e6473181e', 'hex');
    const idText = Buffer.concat([Buffer.from([0x60 + created.body.id.length]), Buffer.from(created.body.id)]);
    expect(device.rawFrames.at(-1)).toBe(Buffer.concat([vector.subarray(0, 2), idText, vector.subarray(7)]).toString('hex'));
    const sent = await until(async () => { const r = await hub.api('GET', `/v1/devices/cmd-online/commands/${created.body.id}`); return r.body.status === 'sent' ? r.body : undefined; }, 20_000);
    expect(Date.parse(sent.sentAt)).toBeGreaterThanOrEqual(Date.parse(created.body.createdAt));
    device.send(encodeResult(created.body.id, 0));
    await until(async () => ((await hub.api('GET', `/v1/devices/cmd-online/commands/${created.body.id}`)).body.status === 'received' ? true : undefined), 20_000);
    device.send(encodeResult(created.body.id, 1, new Map([['ok', true]])));
    const done = await hub.api('GET', `/v1/devices/cmd-online/commands/${created.body.id}?wait=20`);
    expect(done.body).toMatchObject({ status: 'succeeded', result: { ok: true } });
    expect(Date.parse(done.body.completedAt)).toBeGreaterThanOrEqual(Date.parse(done.body.sentAt));
    const rows = await until(async () => {
      const r = await hub.db.query(`SELECT * FROM command WHERE device = 'cmd-online'`);
      return r.length > 0 ? r : undefined;
    }, 20_000);
    // One point per command, at its final status.
    expect(rows).toHaveLength(1);
    expect(rows[0]!).toMatchObject({ name: 'set_interval', status: 'succeeded' });
    expect(typeof rows[0]!.latency_ms).toBe('number');
    await device.close();
  });

  it('keeps commands for an offline device and sends them in order when it connects', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const r = await hub.api('POST', '/v1/devices/cmd-offline/commands', { name: `step-${n}`, args: n });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    const listed = await hub.api('GET', '/v1/devices/cmd-offline/commands?status=queued');
    expect(listed.body.commands.map((c: { id: string }) => c.id)).toEqual(ids);
    const device = await connect('cmd-offline');
    const received = [await nextCommand(device), await nextCommand(device), await nextCommand(device)];
    expect(received.map((c) => c.commandId)).toEqual(ids);
    expect(received.map((c) => c.args)).toEqual([1, 2, 3]);
    await device.close();
  });

  it('expires a command whose TTL passes before it is sent', async () => {
    const r = await hub.api('POST', '/v1/devices/cmd-ttl/commands', { name: 'reboot', ttlMs: 200 });
    const done = await hub.api('GET', `/v1/devices/cmd-ttl/commands/${r.body.id}?wait=20`);
    expect(done.body.status).toBe('expired');
    const device = await connect('cmd-ttl');
    await expect(device.next(500)).rejects.toThrow(/no hub message/);
    await device.close();
  });

  it('times out a sent command with no final RESULT, and ignores a late answer', async () => {
    const device = await connect('cmd-timeout');
    const r = await hub.api('POST', '/v1/devices/cmd-timeout/commands', { name: 'slow', timeoutMs: 300 });
    await nextCommand(device);
    device.send(encodeResult(r.body.id, 0));
    const done = await hub.api('GET', `/v1/devices/cmd-timeout/commands/${r.body.id}?wait=20`);
    expect(done.body.status).toBe('timed-out');
    device.send(encodeResult(r.body.id, 1));
    await hubHasRead(device);
    expect((await hub.api('GET', `/v1/devices/cmd-timeout/commands/${r.body.id}`)).body.status).toBe('timed-out');
    expect(device.socket.readyState).toBe(device.socket.OPEN);
    await device.close();
  });

  it('cancels a queued command, and refuses to cancel one already sent with 409', async () => {
    const queued = await hub.api('POST', '/v1/devices/cmd-cancel/commands', { name: 'a' });
    const cancelled = await hub.api('DELETE', `/v1/devices/cmd-cancel/commands/${queued.body.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const device = await connect('cmd-cancel');
    const second = await hub.api('POST', '/v1/devices/cmd-cancel/commands', { name: 'b' });
    const delivered = await nextCommand(device);
    expect(delivered.commandId).toBe(second.body.id); // the cancelled one never went out
    await until(async () => ((await hub.api('GET', `/v1/devices/cmd-cancel/commands/${second.body.id}`)).body.status === 'sent' ? true : undefined), 20_000);
    const refused = await hub.api('DELETE', `/v1/devices/cmd-cancel/commands/${second.body.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('PW_ERR_COMMAND_NOT_QUEUED');
    expect((await hub.api('DELETE', '/v1/devices/cmd-cancel/commands/cnope')).status).toBe(404);
    await device.close();
  });

  it('?wait on POST and GET returns the final state in one call (200), or the current one when the wait ends (202)', async () => {
    const device = await connect('cmd-wait');
    const answering = (async () => {
      const c = await nextCommand(device);
      device.send(encodeResult(c.commandId, 2, 'disk full'));
    })();
    // 200 only with a final state: a wait that ran out answers 202.
    const final = await hub.api('POST', '/v1/devices/cmd-wait/commands?wait=60', { name: 'backup' });
    await answering;
    expect(final.status).toBe(200);
    expect(final.body).toMatchObject({ status: 'failed', result: 'disk full' });
    // The device never answers this one: the wait ends with it queued or sent, whichever it is by then.
    const pending = await hub.api('POST', '/v1/devices/cmd-wait/commands?wait=0.3', { name: 'ignored' });
    expect(pending.status).toBe(202);
    expect(['queued', 'sent']).toContain(pending.body.status);
    expect((await nextCommand(device)).commandId).toBe(pending.body.id);
    await until(async () => ((await hub.api('GET', `/v1/devices/cmd-wait/commands/${pending.body.id}`)).body.status === 'sent' ? true : undefined), 20_000);
    // GET the same way: 202 when the wait ends before a final state, 200 for a plain read and once final.
    const stillPending = await hub.api('GET', `/v1/devices/cmd-wait/commands/${pending.body.id}?wait=0.3`);
    expect(stillPending.status).toBe(202);
    expect(stillPending.body.status).toBe('sent');
    expect((await hub.api('GET', `/v1/devices/cmd-wait/commands/${pending.body.id}`)).status).toBe(200);
    device.send(encodeResult(pending.body.id, 1));
    const finalRead = await hub.api('GET', `/v1/devices/cmd-wait/commands/${pending.body.id}?wait=20`);
    expect(finalRead.status).toBe(200);
    expect(finalRead.body.status).toBe('succeeded');
    await device.close();
  });

  it('answers unknown devices, bad bodies, oversized args and a full queue clearly', async () => {
    expect((await hub.api('POST', '/v1/devices/nobody/commands', { name: 'x' })).status).toBe(404);
    const noName = await hub.api('POST', '/v1/devices/cmd-bad/commands', { args: 1 });
    expect(noName.status).toBe(400);
    expect(noName.body.error.message).toMatch(/name/);
    const malformed = await fetch(`${hub.baseUrl}/v1/devices/cmd-bad/commands`, {
      method: 'POST', headers: { authorization: 'Bearer test-operator-token-0123456789', 'content-type': 'application/json' }, body: '{"name": ',
    });
    expect(malformed.status).toBe(400);
    const big = await hub.api('POST', '/v1/devices/cmd-bad/commands', { name: 'x', args: 'y'.repeat(70_000) });
    expect(big.status).toBe(400);
    expect(big.body.error.code).toBe('PW_ERR_COMMAND_TOO_BIG');
    const unsafe = await hub.api('POST', '/v1/devices/cmd-bad/commands', { name: 'x', args: { n: 2 ** 60 } });
    expect(unsafe.status).toBe(400);
    expect(unsafe.body.error.message).toMatch(/\$bigint/);
    const longTtl = await hub.api('POST', '/v1/devices/cmd-bad/commands', { name: 'x', ttlMs: 7_200_000 });
    expect(longTtl.status).toBe(409);
    expect(longTtl.body.error.code).toBe('PW_ERR_COMMAND_TTL_TOO_LONG');
    expect(longTtl.body.error.message).toMatch(/ttlMs 7200000 is above the limit 3600000 \(PULSEWIRE_COMMAND_TTL_MS\)/);
    for (let i = 0; i < 5; i++) expect((await hub.api('POST', '/v1/devices/cmd-full/commands', { name: `n${i}` })).status).toBe(202);
    const full = await hub.api('POST', '/v1/devices/cmd-full/commands', { name: 'one-too-many' });
    expect(full.status).toBe(429);
    expect(full.body.error.code).toBe('PW_ERR_COMMAND_QUEUE_FULL');
    expect(full.body.error.message).toMatch(/cmd-full has 5 unfinished commands, the limit is 5 \(PULSEWIRE_COMMAND_QUEUE_MAX\)/);
    const openapi = (await hub.api('GET', '/openapi.json')).body;
    expect(Object.keys(openapi.paths['/v1/devices/{id}/commands'].post.responses)).toEqual(expect.arrayContaining(['409', '429']));
  });

  it('accepts a command whose frame, with its real id, is exactly PULSEWIRE_MAX_MESSAGE_BYTES, and refuses one byte more', async () => {
    const limit = hub.config.maxMessageBytes;
    const frameBytes = (args: string) => encodeCommand('c'.repeat(COMMAND_ID_LENGTH), 'fill', args).length;
    let n = limit;
    while (frameBytes('x'.repeat(n)) > limit) n--;
    expect(frameBytes('x'.repeat(n))).toBe(limit); // no CBOR length-header step at this size
    const device = await connect('cmd-edge');
    const fits = await hub.api('POST', '/v1/devices/cmd-edge/commands', { name: 'fill', args: 'x'.repeat(n) });
    expect(fits.status).toBe(202);
    expect(fits.body.id).toHaveLength(COMMAND_ID_LENGTH);
    const command = await nextCommand(device);
    expect(command.commandId).toBe(fits.body.id);
    expect(device.rawFrames.at(-1)!.length / 2).toBe(limit);
    const over = await hub.api('POST', '/v1/devices/cmd-edge/commands', { name: 'fill', args: 'x'.repeat(n + 1) });
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('PW_ERR_COMMAND_TOO_BIG');
    expect(over.body.error.message).toContain(`${limit + 1} bytes encoded, the limit is ${limit}`);
    await device.close();
  });

  it('ignores a RESULT for an unknown command and a second final RESULT, keeping the connection', async () => {
    const device = await connect('cmd-twice');
    device.send(encodeResult('c-never-issued', 1));
    const r = await hub.api('POST', '/v1/devices/cmd-twice/commands', { name: 'once' });
    const c = await nextCommand(device);
    device.send(encodeResult(c.commandId, 1, 'first'));
    device.send(encodeResult(c.commandId, 2, 'second'));
    const settled = await hub.api('GET', `/v1/devices/cmd-twice/commands/${r.body.id}?wait=20`);
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ status: 'succeeded', result: 'first' });
    await hubHasRead(device);
    const read = await hub.api('GET', `/v1/devices/cmd-twice/commands/${r.body.id}`);
    expect(read.body).toMatchObject({ status: 'succeeded', result: 'first' });
    expect(device.socket.readyState).toBe(device.socket.OPEN);
    // An exact 64-bit result reaches the operator exactly.
    const big = await hub.api('POST', '/v1/devices/cmd-twice/commands', { name: 'big', args: { $bigint: '18446744073709551615' } });
    const bigCommand = await nextCommand(device);
    expect(device.rawFrames.at(-1)).toContain('1bffffffffffffffff'); // uint64 max on the wire, exactly
    device.send(encodeResult(bigCommand.commandId, 1, 2n ** 63n + 1n));
    const bigDone = await hub.api('GET', `/v1/devices/cmd-twice/commands/${big.body.id}?wait=20`);
    expect(bigDone.body.result).toEqual({ $bigint: '9223372036854775809' });
    device.send(encodeReported(new Map([['ok', 1]])));
    await device.close();
  });
});
