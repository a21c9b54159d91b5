import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { connectInflux, parseInfluxUrl } from '../../src/storage/influx-connection.js';
import { unreachable } from '../support/ports.js';

describe('parseInfluxUrl', () => {
  it('takes the database from the path and credentials from userinfo', () => {
    expect(parseInfluxUrl('https://ops:p%40ss@influx.example:8443/pulse_wire-1/')).toEqual({
      protocol: 'https',
      host: 'influx.example',
      port: 8443,
      database: 'pulse_wire-1',
      username: 'ops',
      password: 'p@ss',
      safeUrl: 'https://ops:***@influx.example:8443/pulse_wire-1/',
    });
  });

  it('defaults the port by scheme and has no credentials when none are given', () => {
    const parsed = parseInfluxUrl('http://[::1]/db');
    expect(parsed).toMatchObject({ host: '::1', port: 80, database: 'db' });
    expect(parsed).not.toHaveProperty('username');
  });

  it.each([
    ['not a url', /not a URL/],
    ['ftp://h/db', /http:\/\/ or https:\/\//],
    ['http://127.0.0.1:8086', /name the database/],
    ['http://127.0.0.1:8086/', /name the database/],
    ['http://127.0.0.1:8086/a/b', /must match/],
    ['http://127.0.0.1:8086/a%20b', /must match/],
  ])('refuses %s with PW_ERR_CONFIG', (url, message) => {
    expect(() => parseInfluxUrl(url)).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG', message: expect.stringMatching(message) }));
  });
});

describe('connectInflux against influxd', () => {
  it('pings, and creates its database idempotently', async () => {
    const database = `conn_${randomBytes(4).toString('hex')}`;
    const connection = connectInflux(`${inject('influxUrl')}/${database}`);
    expect(connection.database).toBe(database);
    expect(await connection.ping(10_000)).toBe(true);
    await connection.ensureDatabase();
    await connection.ensureDatabase();
    expect(await connection.influx.getDatabaseNames()).toContain(database);
    await connection.influx.dropDatabase(database);
  });

  it('reports a closed port as not ready, and ensureDatabase as storage unavailable', async () => {
    const nowhere = await unreachable();
    try {
      const connection = connectInflux(nowhere.url('/db'));
      expect(await connection.ping(500)).toBe(false);
      await expect(connection.ensureDatabase()).rejects.toMatchObject({ code: 'PW_ERR_STORAGE_UNAVAILABLE', detail: expect.stringMatching(/ECONNREFUSED/) });
    } finally {
      await nowhere.release();
    }
  });
});
