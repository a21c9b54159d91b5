/**
 * A real nginx (Debian's) in front of given upstreams, on the shipped
 * configuration deploy/nginx/pulsewire.conf as it is: only its upstream's
 * `server` lines and its `listen` line are replaced (renderNginxConfig).
 *
 * It runs unprivileged-friendly as a child process: its own prefix, config,
 * pid file and temp dirs under a temp dir, errors on stderr (`-e stderr`, so
 * nothing is opened under /var/log before the config is read). nginx cannot
 * listen on port 0, so we pick a free port and, when another process takes
 * it before nginx binds (nginx says "Address already in use" and exits),
 * start again with another. nginx writes its pid file only after it has
 * bound its sockets: the pid file naming our child is the readiness signal,
 * which no other process on that port could fake.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/storage/influxd-config.js';

export const SHIPPED_NGINX_CONFIG = fileURLToPath(new URL('../../deploy/nginx/pulsewire.conf', import.meta.url));

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'];
const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5000;

export type TestNginx = {
  readonly port: number;
  /** The shipped config as this nginx runs it. */
  readonly config: string;
  /** http://127.0.0.1:PORT plus `path` */
  url(path?: string): string;
  /** ws://127.0.0.1:PORT plus `path` */
  wsUrl(path?: string): string;
  /** nginx's error log so far (its stderr). */
  readonly errorLog: string;
  /** Points the upstream at `upstreams` (a node restarted on a new port) and reloads nginx, as an operator's service discovery would. */
  setUpstreams(upstreams: readonly string[]): Promise<void>;
  stop(): Promise<void>;
};

/**
 * The shipped config with `upstreams` (host:port each) as the upstream's
 * servers and `listen` as the server's listen address. Throws when the file
 * no longer has the shape this relies on, rather than running something else.
 */
export function renderNginxConfig(source: string, opts: { upstreams: readonly string[]; listen: string }): string {
  if (opts.upstreams.length === 0) throw new Error('renderNginxConfig: at least one upstream');
  const upstream = /^upstream pulsewire_hubs \{\n[\s\S]*?^\}\n/m.exec(source);
  if (!upstream) throw new Error('renderNginxConfig: no `upstream pulsewire_hubs { ... }` block in the config');
  const serverLine = /^[ \t]*server[ \t]+[^;\n]+;[ \t]*\n/gm;
  let first = true;
  const block = upstream[0].replace(serverLine, () => {
    if (!first) return '';
    first = false;
    return opts.upstreams.map((address) => `    server ${address};\n`).join('');
  });
  if (first) throw new Error('renderNginxConfig: the upstream block has no `server` line');
  const listens = source.match(/^[ \t]*listen[ \t]+[^;\n]+;/gm) ?? [];
  if (listens.length !== 1) throw new Error(`renderNginxConfig: expected one \`listen\` line, found ${listens.length}`);
  return source.replace(upstream[0], block).replace(/^([ \t]*)listen[ \t]+[^;\n]+;/m, `$1listen ${opts.listen};`);
}

/**
 * The main config around the shipped http-context file: everything nginx
 * writes stays under `dir`. It compresses event streams, as a site's
 * nginx.conf may (`gzip_types *`): gzip holds events back until a block
 * fills, so the shipped SSE location must turn it off to pass the SSE test.
 */
function mainConfig(dir: string): string {
  return `daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
worker_processes 2;
events { worker_connections 1024; }
http {
    access_log off;
    gzip on;
    gzip_types text/event-stream;
    gzip_min_length 1;
    client_body_temp_path ${dir}/temp/body;
    proxy_temp_path ${dir}/temp/proxy;
    fastcgi_temp_path ${dir}/temp/fastcgi;
    uwsgi_temp_path ${dir}/temp/uwsgi;
    scgi_temp_path ${dir}/temp/scgi;
    include ${dir}/pulsewire.conf;
}
`;
}

export async function findNginx(): Promise<string> {
  for (const candidate of CANDIDATES) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next one
    }
  }
  throw new Error('nginx was not found in /usr/sbin or /usr/bin; run `npm run setup` (which apt-get installs Debian\'s nginx)');
}

export type StartNginxOptions = {
  /** host:port of each upstream server. */
  upstreams: readonly string[];
  /** The config to render (default: the shipped file). */
  source?: string;
  /** Picks the port to try (default: a free one); the test of the retry hands out a taken one first. */
  pickPort?: () => Promise<number>;
};

export async function startNginx(opts: StartNginxOptions): Promise<TestNginx> {
  const binary = await findNginx();
  const source = opts.source ?? (await readFile(SHIPPED_NGINX_CONFIG, 'utf8'));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-test-nginx-'));
  // Run as root, nginx's workers are `nobody`: they must reach the temp dirs below.
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'temp'));
  await writeFile(path.join(dir, 'nginx.conf'), mainConfig(dir));
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt += 1) {
    const port = await (opts.pickPort ?? (() => freePort('127.0.0.1')))();
    const config = renderNginxConfig(source, { upstreams: opts.upstreams, listen: `127.0.0.1:${port}` });
    await writeFile(path.join(dir, 'pulsewire.conf'), config);
    const proc = new NginxProcess(binary, dir);
    try {
      await proc.ready();
      return proc.handle(port, config, dir, source);
    } catch (err) {
      lastError = err as Error;
      await proc.stop();
      if (!proc.stderr.includes('Address already in use')) break;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error('nginx did not start');
}

class NginxProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<string>;
  readonly #pidFile: string;
  #stderr = '';
  // Fast shutdown, which also ends the workers (SIGKILL would orphan them).
  readonly #onParentExit = (): void => void this.#child.kill('SIGTERM');

  constructor(binary: string, dir: string) {
    this.#pidFile = path.join(dir, 'nginx.pid');
    this.#child = spawn(binary, ['-e', 'stderr', '-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.#stderr = (this.#stderr + chunk).slice(-20_000); });
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
      this.#child.once('error', (err) => resolve(`failed to spawn: ${err.message}`));
    });
    process.on('exit', this.#onParentExit);
  }

  get stderr(): string {
    return this.#stderr;
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let exit: string | undefined;
    void this.#exited.then((why) => { exit = why; });
    while (exit === undefined && Date.now() < deadline) {
      const pid = await readFile(this.#pidFile, 'utf8').catch(() => '');
      if (pid.trim() === String(this.#child.pid)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`nginx ${exit ?? `wrote no pid file within ${READY_TIMEOUT_MS} ms`}:\n${this.#stderr}`);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
    process.off('exit', this.#onParentExit);
  }

  /** SIGHUP: nginx re-reads its config; new workers take new connections, old ones finish theirs. */
  async reload(dir: string, config: string): Promise<void> {
    await writeFile(path.join(dir, 'pulsewire.conf'), config);
    const before = this.#stderr.length;
    this.#child.kill('SIGHUP');
    // The master logs nothing on success at level warn; give it a moment to start the new workers.
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (/\[emerg\]/.test(this.#stderr.slice(before))) throw new Error(`nginx refused the new config:\n${this.#stderr.slice(before)}`);
  }

  handle(port: number, config: string, dir: string, source: string): TestNginx {
    const proc = this;
    let current = config;
    return {
      port,
      get config() { return current; },
      url: (p = '') => `http://127.0.0.1:${port}${p}`,
      wsUrl: (p = '') => `ws://127.0.0.1:${port}${p}`,
      get errorLog() { return proc.stderr; },
      async setUpstreams(upstreams) {
        current = renderNginxConfig(source, { upstreams, listen: `127.0.0.1:${port}` });
        await proc.reload(dir, current);
      },
      stop: async () => {
        await proc.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
