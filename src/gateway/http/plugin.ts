/**
 * The HTTP fallback for devices (protocol section 8, docs/http-fallback.md):
 * `POST /v1/device/messages` carries TELEMETRY, RESULT and REPORTED up and
 * answers with the ACKs plus whatever COMMAND and DESIRED wait;
 * `GET /v1/device/messages?wait=S` long-polls for COMMAND and DESIRED.
 * Same credentials, limiter, intake, command and state services as the
 * WebSocket path; only the transport differs. Errors are the operator API's
 * JSON body `{"error":{"code","message"}}` with the catalog's status.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { bodyLimitDetail, errorHandler } from '../../api/error-handler.js';
import { PulsewireError } from '../../errors/catalog.js';
import { arrayElementSpans } from '../../protocol/cbor-scan.js';
import { decodeDeviceBatch, encodeHubBatch } from '../../protocol/codec.js';
import { MAX_BATCH_DEPTH, MAX_IN_FLIGHT } from '../../protocol/limits.js';
import type { AckMessage, DeviceMessage, HubMessage } from '../../protocol/messages.js';
import { frameFingerprint } from '../accepted-seqs.js';
import type { DeviceRuntime } from '../device-runtime.js';
import { checkDeviceRequest } from '../request-credentials.js';
import type { OfflineReason } from '../../events/bus.js';
import { HttpLink, Pickup } from './http-link.js';
import { PresenceTracker } from './presence.js';
import { RequestBudget } from './request-budget.js';

export const HTTP_DEVICE_PATH = '/v1/device/messages';
/** Protocol section 8: a long poll waits at most 60 s. */
export const MAX_WAIT_S = 60;

declare module 'fastify' {
  interface FastifyRequest {
    /** The device's HTTP presence; undefined while its WebSocket owns it (the WebSocket wins). */
    httpLink?: HttpLink | undefined;
    httpRuntime?: DeviceRuntime;
  }
}

export async function httpFallback(app: FastifyInstance): Promise<void> {
  const { config, registry, metrics, gateway, outbox, commands, deviceState } = app;
  const { runtimes, intake, status, authLimiter } = gateway;
  const presence = new PresenceTracker<HttpLink>({
    timeoutMs: 2 * config.pingIntervalMs,
    // Cheap (see presence.ts), so often: a device goes offline at most this much after 2 x pingInterval.
    sweepMs: Math.max(25, Math.min(1000, Math.floor(config.pingIntervalMs / 4))),
  });
  const budgets = new WeakMap<DeviceRuntime, RequestBudget>();
  const openPolls = new Set<() => void>();
  const received = {
    1: metrics.messagesIn.labels('telemetry'),
    4: metrics.messagesIn.labels('result'),
    5: metrics.messagesIn.labels('reported'),
  };

  const linkEnded = (link: HttpLink, reason: OfflineReason, detail: string | undefined) => {
    presence.forget(link);
    metrics.disconnects.inc({ reason });
    // Replaced by a WebSocket: that session already reported the device online.
    if (runtimes.detach(link)) status.offline(runtimes.get(link.deviceId), link, reason, detail);
  };

  /** The device's HTTP presence, started by this request if it had none; undefined when a WebSocket owns the device. */
  const presenceFor = (runtime: DeviceRuntime, request: FastifyRequest, method: string): HttpLink | undefined => {
    const current = runtime.session;
    if (current instanceof HttpLink) {
      current.remoteAddress = request.ip;
      return current;
    }
    if (current) return undefined;
    const link = new HttpLink(runtime.deviceId, request.ip, linkEnded);
    runtimes.attach(link);
    request.log.info({ deviceId: runtime.deviceId }, 'device uses the HTTP fallback');
    status.online(runtime, link, method, false);
    return link;
  };

  // Only CBOR is parsed in this scope; anything else is fastify's 415, mapped below.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/cbor', { parseAs: 'buffer', bodyLimit: config.maxMessageBytes }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error: FastifyError, request, reply) => errorHandler(deviceError(error, request), request, reply));
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDeviceRequests.inc({ method: request.method, status: String(reply.statusCode) });
  });

  // onRequest: credentials are checked before a byte of the body is read.
  app.addHook('onRequest', async (request, reply) => {
    const result = await checkDeviceRequest(request, authLimiter, { registry, enrollmentKeys: config.enrollmentKeys });
    if ('error' in result) {
      void reply.headers(result.headers);
      throw result.error;
    }
    const runtime = runtimes.get(result.deviceId);
    runtime.lastSeen = Date.now();
    request.device = { id: result.deviceId, method: result.method };
    request.httpRuntime = runtime;
    // Any authenticated request is a sign of life, a refused one too: the device is there.
    const link = presenceFor(runtime, request, result.method);
    request.httpLink = link;
    if (link) {
      presence.requestStarted(link);
      reply.raw.once('close', () => { if (!link.ended) presence.requestEnded(link); });
    }
    let budget = budgets.get(runtime);
    if (!budget) budgets.set(runtime, (budget = new RequestBudget({ ratePerS: config.httpDeviceRatePerS })));
    const waitMs = budget.takeRequest();
    if (waitMs > 0) {
      void reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
      throw new PulsewireError('PW_ERR_RATE_LIMITED', `more than ${config.httpDeviceRatePerS} requests per second (PULSEWIRE_HTTP_DEVICE_RATE)`);
    }
  });

  // Browser security headers are nothing to a device (api/security-headers.ts).
  app.post(HTTP_DEVICE_PATH, { bodyLimit: config.maxMessageBytes, schema: { hide: true }, config: { securityHeaders: false } }, async (request, reply) => {
    if (!(request.body instanceof Buffer)) throw new PulsewireError('PW_ERR_MEDIA_TYPE', 'the request has no CBOR body');
    const bytes = new Uint8Array(request.body.buffer, request.body.byteOffset, request.body.length);
    const messages = decodeDeviceBatch(bytes, { maxBytes: config.maxMessageBytes });
    if (messages instanceof PulsewireError) {
      metrics.frameRejections.inc({ code: messages.code });
      throw messages;
    }
    const runtime = request.httpRuntime!;
    const telemetryCount = messages.reduce((n, m) => n + (m.type === 1 ? 1 : 0), 0);
    const budget = budgets.get(runtime)!;
    if (telemetryCount > 0 && !budget.fitsWindow(telemetryCount)) {
      if (telemetryCount > MAX_IN_FLIGHT) throw new PulsewireError('PW_ERR_BATCH_TOO_BIG', `${telemetryCount} TELEMETRY messages; split them over several requests`);
      void reply.header('retry-after', '1');
      throw new PulsewireError('PW_ERR_RATE_LIMITED', `${budget.telemetryInFlight} TELEMETRY messages of this device are still being stored (window of ${MAX_IN_FLIGHT})`);
    }
    budget.telemetryInFlight += telemetryCount;
    let acks: AckMessage[];
    try {
      acks = await Promise.all(handleMessages(runtime, messages, bytes));
    } finally {
      budget.telemetryInFlight -= telemetryCount;
    }
    const link = request.httpLink;
    const pickup = new Pickup();
    if (link?.offer(pickup)) {
      // Until the outbox handed over what waits, or found nothing: never until its write completes (ours).
      await Promise.race([pickup.filled, outbox.flush(runtime.deviceId)]);
      link.withdraw(pickup);
    }
    return answer(reply, [...acks, ...(pickup.messages ?? [])], pickup);
  });

  app.get<{ Querystring: { wait?: number } }>(HTTP_DEVICE_PATH, {
    config: { securityHeaders: false },
    schema: {
      hide: true,
      querystring: { type: 'object', properties: { wait: { type: 'integer', minimum: 0, maximum: MAX_WAIT_S } } },
    },
  }, async (request, reply) => {
    const waitMs = (request.query.wait ?? 0) * 1000;
    const link = request.httpLink;
    const deviceId = request.device!.id;
    const pickup = new Pickup();
    let release!: () => void;
    const released = new Promise<void>((resolve) => { release = resolve; });
    const gone = () => release();
    openPolls.add(release);
    reply.raw.once('close', gone);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (link && !link.ended) link.openPoll(pickup, release);
      const flushed = link ? outbox.flush(deviceId) : Promise.resolve();
      const waited = waitMs > 0 ? new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); }) : flushed;
      await Promise.race([pickup.filled, released, waited]);
    } finally {
      clearTimeout(timer);
      openPolls.delete(release);
      reply.raw.off('close', gone);
      link?.withdraw(pickup);
    }
    return answer(reply, pickup.messages ?? [], pickup);
  });

  /** Hands RESULT and REPORTED on at once, in order, and returns the ACK of each TELEMETRY (in order) as it is decided. */
  function handleMessages(runtime: DeviceRuntime, messages: DeviceMessage[], bytes: Uint8Array): Promise<AckMessage>[] {
    runtime.messagesIn += messages.length;
    const spans = messages.some((m) => m.type === 1) ? arrayElementSpans(bytes, { maxDepth: MAX_BATCH_DEPTH })! : [];
    const acks: Promise<AckMessage>[] = [];
    messages.forEach((message, i) => {
      if (message.type === 'bare-pack') return; // not decoded from a batch
      received[message.type].inc();
      switch (message.type) {
        case 1: {
          const { start, end } = spans[i]!;
          const { seq } = message;
          acks.push(intake.accept(runtime, seq, message.pack, frameFingerprint(bytes.subarray(start, end)))
            .then((o): AckMessage => (o.code === 0 ? { type: 2, seq } : { type: 2, seq, code: o.code, ...(o.reason ? { reason: o.reason } : {}) })));
          return;
        }
        case 4:
          commands.onResult(runtime.deviceId, message);
          return;
        case 5:
          deviceState.onReported(runtime.deviceId, message.state);
      }
    });
    return acks;
  }

  presence.start();
  app.addHook('preClose', async () => {
    presence.stop();
    // HTTP presences end with the WebSocket sessions (gateway preClose); polls of WebSocket-owned devices end here.
    for (const release of [...openPolls]) release();
  });
}

/** Writes the CBOR answer; `pickup` learns whether the response (and so its commands) reached the socket. */
function answer(reply: FastifyReply, messages: HubMessage[], pickup: Pickup): FastifyReply {
  const written = responseWritten(reply.raw);
  void written.then((ok) => pickup.settle(ok));
  try {
    return reply.code(200).type('application/cbor').send(Buffer.from(encodeHubBatch(messages)));
  } catch (err) {
    pickup.settle(false);
    throw err;
  }
}

/** 'finish': the whole response was handed to the OS, the HTTP equivalent of a WebSocket send callback. */
function responseWritten(res: ServerResponse): Promise<boolean> {
  if (res.writableFinished) return Promise.resolve(true);
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    res.once('finish', () => resolve(true));
    res.once('close', () => resolve(res.writableFinished));
  });
}

/** fastify's own refusals in this scope, as catalog errors a firmware developer can look up. */
function deviceError(error: FastifyError, request: FastifyRequest): Error {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PulsewireError('PW_ERR_MEDIA_TYPE', `got ${error.message.replace(/^Unsupported Media Type:?\s*/i, '') || 'none'}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      // The device's name for it (protocol: a message over the limit); the operator API says PW_ERR_BODY_TOO_BIG.
      return new PulsewireError('PW_ERR_FRAME_TOO_BIG', bodyLimitDetail(request, 'PULSEWIRE_MAX_MESSAGE_BYTES'));
    default:
      return error;
  }
}
