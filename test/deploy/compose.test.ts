/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine:
 * what they reference exists, what they configure is what the hub reads,
 * images are pinned, every service reports its health, nothing listens
 * beyond loopback, and the cluster's parts agree (nginx and Prometheus know
 * every hub node; each node has its own id and data volume). And
 * docs/deploy.md names only variables the hub reads.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_DOC, loadConfig } from '../../src/config/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  ports?: (string | { host_ip?: string; published?: string | number })[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, unknown>;
};

// Merge keys (`<<: *hub`) are YAML 1.1, which compose reads; the yaml package wants them asked for.
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = Object.entries(compose.services);
const KNOWN_VARIABLES = new Set<string>(CONFIG_DOC.map(([name]) => name));

function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((item) => [item.split('=')[0]!, item.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value ?? '')]));
}

/** Short volume syntax: a bind mount when the source is a path, a named volume otherwise. */
function mounts(service: Service): { kind: 'bind' | 'volume'; source: string }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') return { kind: volume.type === 'bind' ? 'bind' : 'volume', source: volume.source ?? '' };
    const source = volume.split(':')[0]!;
    return { kind: /^[./~]/.test(source) ? 'bind' : 'volume', source };
  });
}

/** Hub nodes: the services that join the cluster. */
const hubs = services.filter(([, service]) => environment(service)['PULSEWIRE_NATS_URL'] !== undefined);

describe('docker-compose.yml', () => {
  it('is the cluster topology: nats, influxdb, two hub nodes, nginx, prometheus, grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'hub-1', 'hub-2', 'influxdb', 'nats', 'nginx', 'prometheus']);
    expect(hubs.map(([name]) => name)).toEqual(['hub-1', 'hub-2']);
  });

  it('references only files and directories that exist, and volumes it declares', () => {
    for (const [name, service] of services) {
      for (const { kind, source } of mounts(service)) {
        if (kind === 'bind') expect(existsSync(path.join(ROOT, source)), `${name}: bind mount ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name}: volume ${source}`).toContain(source);
      }
      if (service.build !== undefined) {
        const build = typeof service.build === 'string' ? { context: service.build } : service.build;
        const context = path.join(ROOT, build.context ?? '.');
        expect(existsSync(context), `${name}: build context`).toBe(true);
        expect(existsSync(path.join(context, build.dockerfile ?? 'Dockerfile')), `${name}: dockerfile`).toBe(true);
      }
      for (const dependency of Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {})) {
        expect(Object.keys(compose.services), `${name} depends on ${dependency}`).toContain(dependency);
      }
    }
  });

  it('sets only PULSEWIRE_* variables the hub reads, with values it accepts', () => {
    for (const [name, service] of services) {
      for (const key of Object.keys(environment(service)).filter((k) => k.startsWith('PULSEWIRE_'))) {
        expect(KNOWN_VARIABLES.has(key), `${name}: ${key} is not in CONFIG_DOC`).toBe(true);
      }
    }
    for (const [name, service] of hubs) {
      // Interpolated secrets stand in as valid values; everything else is taken as written.
      const env = Object.fromEntries(Object.entries(environment(service)).map(([key, value]) => [key, value.startsWith('${') ? 'x'.repeat(24) : value]));
      const config = loadConfig(env);
      expect(config.cluster, name).toBeDefined();
      expect(config.nodeId).toBe(name);
      // URLs name services of this file.
      for (const url of [config.influxUrl!, ...config.cluster!.servers]) expect(Object.keys(compose.services), `${name}: ${url}`).toContain(new URL(url).hostname);
    }
  });

  it('gives each hub node its own id and data volume, and all of them the same secrets', () => {
    const envs = hubs.map(([, service]) => environment(service));
    expect(new Set(envs.map((env) => env['PULSEWIRE_NODE_ID'])).size).toBe(hubs.length);
    const dataVolumes = hubs.map(([, service]) => mounts(service).find((m) => m.kind === 'volume')?.source);
    expect(new Set(dataVolumes).size).toBe(hubs.length);
    for (const key of ['PULSEWIRE_OPERATOR_TOKEN', 'PULSEWIRE_ENROLLMENT_KEY', 'PULSEWIRE_NATS_URL', 'PULSEWIRE_INFLUX_URL']) {
      expect(new Set(envs.map((env) => env[key])).size, key).toBe(1);
    }
    expect(envs[0]!['PULSEWIRE_OPERATOR_TOKEN']).toMatch(/^\$\{PULSEWIRE_OPERATOR_TOKEN:\?/);
  });

  it('pins every image to a version tag or a digest', () => {
    for (const [name, service] of services) {
      if (service.image === undefined) {
        expect(service.build, `${name} has neither image nor build`).toBeDefined();
        continue;
      }
      const image = service.image;
      const tag = /:([^:/@]+)$/.exec(image.split('@')[0]!)?.[1];
      expect(image.includes('@sha256:') || (tag !== undefined && tag !== 'latest'), `${name}: ${image}`).toBe(true);
    }
  });

  it('has a healthcheck on every service, without curl or wget in images that lack them', () => {
    for (const [name, service] of services) {
      const test = service.healthcheck?.test;
      expect(test, `${name} has no healthcheck`).toBeDefined();
      expect(service.healthcheck?.disable, name).not.toBe(true);
      const command = Array.isArray(test) ? test.join(' ') : String(test);
      expect(command, name).not.toMatch(/^NONE/);
      // The hub's image is node:*-slim: no curl, no wget.
      if (service.build !== undefined) expect(command, name).not.toMatch(/\b(curl|wget)\b/);
    }
    const [, hub] = hubs[0]!;
    expect((hub.healthcheck!.test as string[]).join(' ')).toContain('/readyz');
  });

  it('publishes ports on 127.0.0.1 only', () => {
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) {
        if (typeof port === 'string') expect(port, name).toMatch(/^127\.0\.0\.1:\d+:\d+(\/(tcp|udp))?$/);
        else expect(port.host_ip, name).toBe('127.0.0.1');
      }
    }
  });

  it('puts every hub node behind nginx and in Prometheus\'s targets', () => {
    const nodes = hubs.map(([name, service]) => `${name}:${environment(service)['PULSEWIRE_PORT'] ?? '8080'}`);
    const nginxMount = mounts(compose.services['nginx']!).find((m) => m.kind === 'bind')!;
    expect(nginxMount.source).toBe('./deploy/nginx/pulsewire.conf');
    const upstream = /^upstream pulsewire_hubs \{([\s\S]*?)^\}/m.exec(read(nginxMount.source))![1]!;
    expect([...upstream.matchAll(/^\s*server\s+([^;\s]+)/gm)].map((m) => m[1])).toEqual(nodes);
    const prometheus = parse(read('dashboards/grafana/prometheus/prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    expect(prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets))).toEqual(nodes);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile').replace(/\\\n/g, ' ');
  const lines = dockerfile.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  const froms = lines.map((line, i) => [line, i] as const).filter(([line]) => /^FROM\s/i.test(line));
  const finalStage = lines.slice(froms.at(-1)![1]);

  it('is multi-stage, from a pinned base image', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const args = Object.fromEntries(lines.filter((l) => /^ARG\s+\w+=/.test(l)).map((l) => l.slice(4).split('=') as [string, string]));
    for (const [from] of froms) {
      const image = from.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? '');
      expect(image, from).toMatch(/:(?!latest$)[\w.-]+$|@sha256:/);
    }
  });

  it('installs production dependencies only in the final stage and copies the build in', () => {
    const installs = finalStage.filter((line) => /\bnpm ci\b/.test(line));
    expect(installs.length).toBeGreaterThan(0);
    for (const line of installs) expect(line).toContain('--omit=dev');
    expect(finalStage.some((line) => /^COPY\s+--from=\S+\s+\S*dist\b/.test(line))).toBe(true);
    const buildStage = lines.slice(froms[0]![1], froms[1]![1]);
    expect(buildStage.some((line) => /\bnpm ci\b/.test(line) && !line.includes('--omit=dev'))).toBe(true);
    expect(buildStage.some((line) => /\bnpm run build\b/.test(line))).toBe(true);
  });

  it('runs as a user that is not root, exposes 8080 and checks /readyz with node', () => {
    const users = finalStage.filter((line) => /^USER\s/i.test(line)).map((line) => line.split(/\s+/)[1]!);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(finalStage).toContain('EXPOSE 8080');
    const healthcheck = finalStage.find((line) => /^HEALTHCHECK\s/i.test(line));
    expect(healthcheck).toMatch(/CMD \["node"/);
    expect(healthcheck).toContain('/readyz');
  });

  it('copies from the build context only what exists and .dockerignore lets in', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const sources = lines.filter((line) => /^COPY\s/i.test(line) && !line.includes('--from=')).flatMap((line) => line.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(existsSync(path.join(ROOT, source)), source).toBe(true);
      expect(ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)), `${source} is in .dockerignore`).toBe(false);
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'data', '.git']));
  });
});

describe('docs/deploy.md', () => {
  it('names only variables the hub reads, and the files it points to exist', () => {
    const doc = read('docs/deploy.md');
    const named = new Set(doc.match(/PULSEWIRE_[A-Z_]+/g) ?? []);
    expect(named.size).toBeGreaterThan(10);
    for (const name of named) expect(KNOWN_VARIABLES.has(name), name).toBe(true);
    for (const file of ['deploy/nginx/pulsewire.conf', 'docker-compose.yml', 'Dockerfile', 'dashboards/grafana/prometheus/prometheus.yml']) {
      expect(doc, file).toContain(file);
      expect(existsSync(path.join(ROOT, file)), file).toBe(true);
    }
  });
});
