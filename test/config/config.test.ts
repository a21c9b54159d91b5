import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOC, loadConfig } from '../../src/config/index.js';
import { isPulsewireError } from '../../src/errors/catalog.js';

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(isPulsewireError(err, 'PW_ERR_CONFIG')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('loadConfig', () => {
  it('has working defaults and a generated operator token', () => {
    const config = loadConfig({});
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.pingIntervalMs).toBe(25_000);
    expect(config.maxMessageBytes).toBe(65_536);
    expect(config.influxUrl).toBeUndefined();
    expect(config.operatorTokenGenerated).toBe(true);
    // 24 random bytes as unpadded base64url.
    expect(config.operatorToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every documented variable', () => {
    const config = loadConfig({
      PULSEWIRE_PORT: '9000',
      PULSEWIRE_PING_INTERVAL_MS: '1000',
      PULSEWIRE_INFLUX_URL: 'http://127.0.0.1:8086/telemetry',
      PULSEWIRE_OPERATOR_TOKEN: 'a-very-long-operator-token',
      PULSEWIRE_PERMESSAGE_DEFLATE: 'yes',
    });
    expect(config.port).toBe(9000);
    expect(config.pingIntervalMs).toBe(1000);
    expect(config.influxUrl).toBe('http://127.0.0.1:8086/telemetry');
    expect(config.operatorTokenGenerated).toBe(false);
    expect(config.permessageDeflate).toBe(true);
  });

  it('names the variable and the allowed values in errors', () => {
    expect(configError({ PULSEWIRE_PORT: 'eighty' })).toMatch(/PULSEWIRE_PORT="eighty".*whole number from 0 to 65535/);
    expect(configError({ PULSEWIRE_PORT: '70000' })).toMatch(/PULSEWIRE_PORT/);
    expect(configError({ PULSEWIRE_PING_INTERVAL_MS: '-5' })).toMatch(/PULSEWIRE_PING_INTERVAL_MS/);
    expect(configError({ PULSEWIRE_LOG_LEVEL: 'loud' })).toMatch(/PULSEWIRE_LOG_LEVEL.*one of fatal, error/);
    expect(configError({ PULSEWIRE_INFLUX_URL: 'http://127.0.0.1:8086' })).toMatch(/path names the database/);
    expect(configError({ PULSEWIRE_INFLUX_URL: 'ftp://x/db' })).toMatch(/scheme http: or https:/);
    expect(configError({ PULSEWIRE_PERMESSAGE_DEFLATE: 'maybe' })).toMatch(/true or false/);
    expect(configError({ PULSEWIRE_SPOOL_SYNC: 'fsync' })).toMatch(/PULSEWIRE_SPOOL_SYNC="fsync".*one of commit, flush/);
    expect(loadConfig({}).spoolSync).toBe('commit');
    expect(loadConfig({ PULSEWIRE_SPOOL_SYNC: 'flush' }).spoolSync).toBe('flush');
    expect(configError({ PULSEWIRE_WRITE_CONCURRENCY: '0' })).toMatch(/PULSEWIRE_WRITE_CONCURRENCY="0".*1 to 64/);
    expect(loadConfig({ PULSEWIRE_WRITE_CONCURRENCY: '4' }).writeConcurrency).toBe(4);
    expect(configError({ PULSEWIRE_TLS_CERT: '/nonexistent.pem', PULSEWIRE_TLS_KEY: '/nonexistent.key' })).toMatch(/PULSEWIRE_TLS_CERT.*readable PEM file/);
    expect(configError({ PULSEWIRE_TLS_CA: '/ca.pem' })).toMatch(/PULSEWIRE_TLS_CA/);
  });

  it('never echoes a too-short secret back', () => {
    const message = configError({ PULSEWIRE_OPERATOR_TOKEN: 'short' });
    expect(message).toMatch(/PULSEWIRE_OPERATOR_TOKEN.*at least 16/);
    expect(message).not.toContain('short"');
  });

  it('checks the admission and abuse limits against each other', () => {
    expect(configError({ PULSEWIRE_HANDSHAKE_TIMEOUT_MS: '20000', PULSEWIRE_REQUEST_TIMEOUT_MS: '5000' }))
      .toMatch(/PULSEWIRE_REQUEST_TIMEOUT_MS="5000".*at least PULSEWIRE_HANDSHAKE_TIMEOUT_MS \(20000\)/);
    expect(configError({ PULSEWIRE_MAX_HEADER_BYTES: '100' })).toMatch(/PULSEWIRE_MAX_HEADER_BYTES.*1024 to 1048576/);
    expect(loadConfig({}).maxDeviceConnections).toBeUndefined();
    expect(loadConfig({ PULSEWIRE_MAX_DEVICE_CONNECTIONS: 'auto' }).maxDeviceConnections).toBeUndefined();
    expect(loadConfig({ PULSEWIRE_MAX_DEVICE_CONNECTIONS: '5000' }).maxDeviceConnections).toBe(5000);
    expect(configError({ PULSEWIRE_MAX_DEVICE_CONNECTIONS: 'lots' })).toMatch(/PULSEWIRE_MAX_DEVICE_CONNECTIONS="lots".*auto, or a whole number/);
    expect(loadConfig({}).maxConnectionsPerAddress).toBeUndefined();
  });

  it('documents every variable it reads in the README, and reads every documented one', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const source = readFileSync(new URL('../../src/config/index.ts', import.meta.url), 'utf8');
    const read = new Set(source.slice(source.indexOf('export function loadConfig')).match(/PULSEWIRE_[A-Z_]+/g));
    const documented = new Set(CONFIG_DOC.map(([name]) => name as string));
    expect([...read].sort()).toEqual([...documented].sort());
    for (const name of documented) expect(readme).toContain(`| \`${name}\` |`);
  });
});
