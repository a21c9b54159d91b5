/**
 * An influxd of a test's own with a changed [http] section (auth-enabled,
 * max-body-size), for what the suite's shared one must not do: refuse
 * credentials or bodies. The config is the managed one (influxd-config.ts)
 * with both ports 0; the HTTP port is read back from influxd's own
 * "Listening on HTTP" line, so there is no port to race for.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findInfluxd, writeInfluxdConfig } from '../../src/storage/influxd-config.js';
import { waitFor } from './wait.js';

export type PrivateInfluxd = {
  /** http://127.0.0.1:PORT, without a database. */
  url: string;
  stop(): Promise<void>;
};

export type HttpSettings = { authEnabled?: boolean; maxBodySize?: number };

const READY_TIMEOUT_MS = 60_000;

export async function startPrivateInfluxd(http: HttpSettings): Promise<PrivateInfluxd> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-private-influxd-'));
  const { configFile } = await writeInfluxdConfig(dataDir, '127.0.0.1', 0, 0);
  const extra = http.maxBodySize === undefined ? '' : `\n  max-body-size = ${http.maxBodySize}`;
  const config = (await readFile(configFile, 'utf8')).replace('auth-enabled = false', `auth-enabled = ${http.authEnabled === true}${extra}`);
  await writeFile(configFile, config);
  const child = spawn(await findInfluxd(), ['run', '-config', configFile], {
    // influxd reads INFLUXDB_* variables as overrides of its config.
    env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('INFLUXDB_'))),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`influxd did not listen within ${READY_TIMEOUT_MS} ms:\n${log}`)), READY_TIMEOUT_MS);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      log += chunk;
      const match = /msg="Listening on HTTP".* addr=127\.0\.0\.1:(\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`influxd exited before listening:\n${log}`)); });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  child.stderr!.removeAllListeners('data');
  child.stderr!.resume();
  const url = `http://127.0.0.1:${port}`;
  // /ping needs no credentials, also with auth-enabled.
  const pong = async () => (await fetch(`${url}/ping`).catch(() => undefined))?.status === 204;
  await waitFor(pong, { timeoutMs: READY_TIMEOUT_MS, what: 'influxd /ping', everyMs: 50 }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { url, stop };
}
