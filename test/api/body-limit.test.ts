/**
 * Operator API bodies over the documented limit (1 MiB, README): 413
 * PW_ERR_BODY_TOO_BIG naming the limit, from a real hub over HTTP, for each
 * route that takes a JSON body.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

type Answer = { status: number; body: any };

const LIMIT = 1024 * 1024;

/**
 * node:http rather than fetch: the hub answers as soon as it sees the length
 * (or, chunked, once the limit is passed) and closes the connection, so the
 * rest of the upload may fail (EPIPE); the answer that arrived first counts.
 */
function send(baseUrl: string, method: string, route: string, body: string, opts: { type?: string; chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(`${baseUrl}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${OPERATOR_TOKEN}`,
        'content-type': opts.type ?? 'application/json',
        ...(opts.chunked ? {} : { 'content-length': Buffer.byteLength(body) }),
      },
    }, (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', (err) => { if (!answered) reject(err); });
    if (opts.chunked) for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
    req.end(opts.chunked ? undefined : body);
  });
}

describe('operator API: bodies over the limit', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
    expect((await hub.api('PUT', '/v1/devices/big-1')).status).toBe(201);
  });
  afterAll(async () => { await hub?.close(); });

  const overLimit = (wrap: (filler: string) => unknown) => JSON.stringify(wrap('x'.repeat(LIMIT)));

  it('answers 413 PW_ERR_BODY_TOO_BIG naming the limit on POST commands, PATCH desired and POST jobs', async () => {
    const cases: [string, string, string, { type?: string; chunked?: boolean }][] = [
      ['POST', '/v1/devices/big-1/commands', overLimit((x) => ({ name: 'x', args: x })), {}],
      ['POST', '/v1/devices/big-1/commands', overLimit((x) => ({ name: 'x', args: x })), { chunked: true }],
      ['PATCH', '/v1/devices/big-1/desired', overLimit((x) => ({ blob: x })), {}],
      ['PATCH', '/v1/devices/big-1/desired', overLimit((x) => ({ blob: x })), { type: 'application/merge-patch+json' }],
      ['POST', '/v1/jobs', overLimit((x) => ({ command: { name: 'x', args: x }, target: { ids: ['big-1'] } })), {}],
    ];
    for (const [method, route, body, opts] of cases) {
      const answer = await send(hub.baseUrl, method, route, body, opts);
      expect(answer.status, `${method} ${route} ${JSON.stringify(opts)}`).toBe(413);
      expect(answer.body.error.code).toBe('PW_ERR_BODY_TOO_BIG');
      expect(answer.body.error.message).toMatch(new RegExp(`at most ${LIMIT} bytes`));
    }
    // Nothing of it was acted on.
    expect((await hub.api('GET', '/v1/devices/big-1/commands')).body.commands).toEqual([]);
    expect((await hub.api('GET', '/v1/devices/big-1/state')).body.version).toBe(0);
    expect((await hub.api('GET', '/v1/jobs')).body.jobs).toEqual([]);
  });

  it('lists the 413 in the OpenAPI document of those routes', async () => {
    const paths = (await hub.api('GET', '/openapi.json')).body.paths;
    for (const [path, method] of [['/v1/devices/{id}/commands', 'post'], ['/v1/devices/{id}/desired', 'patch'], ['/v1/jobs', 'post']] as const) {
      expect(Object.keys(paths[path][method].responses), `${method} ${path}`).toContain('413');
    }
  });
});
