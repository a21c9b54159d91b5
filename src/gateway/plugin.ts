/**
 * The device gateway: `GET /v1/device` upgrades authenticated devices that
 * offer `pulsewire.v1` (refusals are plain HTTP answers, before the upgrade),
 * owns every device socket, the liveness sweep and takeovers, and publishes
 * online/offline changes on the bus.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { ERRORS, PulsewireError, type ErrorCode, type ErrorSpec } from '../errors/catalog.js';
import type { OfflineReason } from '../events/bus.js';
import { DEVICE_PATH, SUBPROTOCOL } from '../protocol/messages.js';
import { trackAcceptOrder } from './accept-order.js';
import { AdmissionTicket, DeviceAdmission } from './admission.js';
import { gateDeviceUpgrades, turnOf } from './upgrade-gate.js';
import { AuthFailureLimiter } from './auth-limiter.js';
import { autoDeviceConnections, openFilesLimit } from './capacity.js';
import { DeviceRateLimiter, type DeviceLimit } from './device-rates.js';
import { DeviceRuntimes } from './device-runtime.js';
import { DeviceSession, type SessionHost } from './device-session.js';
import { checkDeviceRequest } from './request-credentials.js';
import { closeAtGraceEnd, recheckAfterAccept, watchCredentials } from './credential-watch.js';
import { LivenessSweep } from './liveness.js';
import { receiptClock } from './receipt-clock.js';
import { StatusRecorder } from './status-recorder.js';
import { confirmBoundMs, Takeovers } from './takeover.js';
import { TelemetryIntake } from './telemetry-intake.js';

declare module 'fastify' {
  interface FastifyInstance {
    gateway: Gateway;
  }
  interface FastifyRequest {
    /** `heldElsewhere`: another live node holds the device (cluster mode), so this connection must show life first. */
    device?: { id: string; method: string; heldElsewhere?: string; credentialsVersion?: number; validUntil?: number };
    /** The device upgrade's admission (admission.ts), held until its socket closes. */
    admission?: AdmissionTicket;
  }
}

export type Gateway = {
  readonly runtimes: DeviceRuntimes;
  readonly intake: TelemetryIntake;
  /** Shared with the HTTP fallback (http/), so both transports count failures and report status alike. */
  readonly authLimiter: AuthFailureLimiter;
  readonly status: StatusRecorder;
  readonly admission: DeviceAdmission;
  /** Closes a device's connection from the operator side (removal, revocation). */
  kick(deviceId: string, closeCode: number, reason: string): boolean;
};

export type GatewayOptions = {
  /** Microseconds since the epoch; tests pin it to send the protocol's fixed-time vectors. */
  nowUs?: () => number;
};

async function gatewayPlugin(app: FastifyInstance, opts: GatewayOptions): Promise<void> {
  const { config, registry, spool, bus, metrics, presence } = app;
  const clustered = app.cluster !== undefined;
  const runtimes = new DeviceRuntimes((deviceId) => spool.acceptedWindow(deviceId), (deviceId) => spool.names.load(deviceId));
  const acceptOrder = trackAcceptOrder(app.server);
  const liveness = new LivenessSweep<DeviceSession>(config.pingIntervalMs);
  const admission = new DeviceAdmission({
    maxDeviceConnections: config.maxDeviceConnections ?? autoDeviceConnections(openFilesLimit()),
    maxConnectionsPerAddress: config.maxConnectionsPerAddress,
    maxHandshakes: config.maxHandshakes,
    acceptRate: config.acceptRate,
    maxWaiting: config.admissionQueue,
    maxWaitMs: config.admissionWaitMs,
  });
  app.addHook('onClose', async () => admission.close());
  // Once the WebSocket plugin's own 'upgrade' listener is in place, in front of it.
  app.addHook('onReady', async () => gateDeviceUpgrades(app.server, admission, {
    refused(refusal, remoteAddress) {
      metrics.handshakeRefusals.inc({ reason: refusal.error.code });
      app.log.info({ code: refusal.error.code, remoteAddress }, 'device handshake refused');
    },
  }));
  const limiter = new AuthFailureLimiter({ maxFailures: config.authMaxFailures, blockMs: config.authBlockMs, maxAddresses: config.authMaxAddresses });
  const status = new StatusRecorder({ presence, sink: spool, bus, logger: app.log, ...(app.cluster ? { handover: app.cluster.handover } : {}) });
  const takeovers = new Takeovers<DeviceSession>({
    boundMs: confirmBoundMs(config.pingIntervalMs),
    settled(session, outcome, detail) {
      metrics.takeovers.inc({ outcome });
      if (outcome === 'confirmed') return; // 'device online' (tookOver) follows
      app.log.info({ deviceId: session.deviceId, remoteAddress: session.remoteAddress, outcome, detail }, 'replacement not confirmed: newer connection dropped');
    },
  });
  const rates = new DeviceRateLimiter(config);
  const limited = (limit: DeviceLimit) => metrics.deviceLimitsHit.inc({ limit });
  const intake = new TelemetryIntake({
    limits: config,
    rates,
    series: spool.names,
    sink: spool,
    bus,
    nowUs: opts.nowUs ?? receiptClock(),
    pace: () => app.pacer.admit(),
    observer: { ack: (code) => metrics.countAck(code), readings: (n) => metrics.countReadings(n), limited },
  });

  const messageTypeLabels = { 1: 'telemetry', 4: 'result', 5: 'reported', 'bare-pack': 'bare-pack' } as const;
  const host: SessionHost = {
    intake,
    rates,
    limited,
    logger: app.log,
    frameRejected: (code) => metrics.frameRejections.inc({ code }),
    received: (type) => metrics.countMessage(messageTypeLabels[type]),
    pong: (session) => liveness.markAlive(session),
    result: (deviceId, message) => app.commands.onResult(deviceId, message),
    reported: (deviceId, message) => app.deviceState.onReported(deviceId, message.state),
    ended(session, reason, detail) {
      // A connection that never took over: the device's status did not change.
      if (takeovers.closed(session, detail ?? reason)) return;
      liveness.delete(session);
      metrics.disconnects.inc({ reason });
      if (reason === 'ping-timeout') metrics.pingTimeouts.inc();
      // A replaced session's successor already reported the device online.
      if (runtimes.detach(session)) status.offline(runtimes.get(session.deviceId), session, reason, detail);
    },
  };

  app.decorate('gateway', {
    runtimes,
    intake,
    authLimiter: limiter,
    status,
    admission,
    kick(deviceId, closeCode, reason) {
      const session = runtimes.peek(deviceId)?.session;
      session?.end(closeCode, reason, 'kicked');
      // A connection waiting to take over must not do so after its device was removed or revoked.
      const waiting = takeovers.end(deviceId, closeCode, reason, 'kicked');
      return session !== undefined || waiting > 0;
    },
  } satisfies Gateway);

  const refuse = (request: FastifyRequest, reply: FastifyReply, code: ErrorCode, headers: Record<string, string> = {}, message: string = ERRORS[code].message) => {
    metrics.handshakeRefusals.inc({ reason: code });
    request.admission?.handshakeDone();
    request.log.info({ code, remoteAddress: request.ip }, 'device handshake refused');
    const spec: ErrorSpec = ERRORS[code];
    // The socket was offered for an upgrade and cannot carry another request: say so.
    return reply.code(spec.http ?? 400).headers({ ...headers, connection: 'close' }).type('text/plain; charset=utf-8').send(`${message}\n`);
  };

  app.route({
    method: 'GET',
    url: DEVICE_PATH,
    websocket: true,
    // Browser security headers are nothing to a device; its refusals stay small (api/security-headers.ts).
    config: { securityHeaders: false },
    // Runs before the upgrade, so every refusal is an ordinary HTTP status with a reason.
    preValidation: async (request, reply) => {
      // Its turn came in the gate (upgrade-gate.ts), before Fastify routed it.
      const turn = turnOf(request.raw);
      if (!offersSubprotocol(request.headers['sec-websocket-protocol'])) {
        turn?.done();
        return refuse(request, reply, 'PW_ERR_SUBPROTOCOL');
      }
      // Before the credentials: under a storm, a refusal must cost less than the work it saves.
      const ticket = admission.admit(request.ip, turn);
      if (!(ticket instanceof AdmissionTicket)) {
        return refuse(request, reply, ticket.error.code, { 'retry-after': String(ticket.retryAfterS) }, ticket.error.message);
      }
      request.admission = ticket;
      const socket = request.raw.socket;
      socket.once('close', () => ticket.release());
      // Closed before this hook ran: its 'close' has been emitted or is about to be; release() is idempotent.
      if (socket.destroyed) ticket.release();
      const checked = await checkDeviceRequest(request, limiter, { registry, enrollmentKeys: config.enrollmentKeys });
      if ('error' in checked) return refuse(request, reply, checked.error.code, checked.headers);
      request.device = {
        id: checked.deviceId, method: checked.method, credentialsVersion: checked.credentialsVersion,
        ...(checked.validUntil !== undefined ? { validUntil: checked.validUntil } : {}),
      };
      // Held by another live node: like a second connection here, it takes over at its first sign of life.
      if (clustered && !runtimes.isConnectedHere(checked.deviceId)) {
        const elsewhere = await app.online.heldElsewhere(checked.deviceId).catch(() => undefined);
        if (elsewhere !== undefined) request.device.heldElsewhere = elsewhere;
      }
    },
    handler: (socket: WebSocket, request: FastifyRequest) => {
      request.admission?.handshakeDone();
      const device = request.device!;
      const accepted = acceptOrder(request.raw.socket);
      const current = runtimes.peek(device.id)?.session;
      if (accepted !== undefined && current?.acceptOrder !== undefined && current.acceptOrder > accepted) {
        // A handshake that waited here while its device gave up on it and connected again: it is
        // the older connection, so it gets the 4000 and the live one stays (protocol 2).
        const replaced = new PulsewireError('PW_ERR_REPLACED');
        metrics.handshakeRefusals.inc({ reason: 'PW_ERR_REPLACED' });
        request.log.info({ deviceId: device.id }, 'stale handshake closed; the device has a newer connection');
        socket.close(replaced.spec.close!, replaced.closeReason);
        return;
      }
      releaseUpgradeObjects(socket, request);
      const runtime = runtimes.get(device.id);
      const session = new DeviceSession(socket, runtime, request.ip, host);
      session.acceptOrder = accepted;
      session.credentialsVersion = device.credentialsVersion;
      if (device.validUntil !== undefined) closeAtGraceEnd(session, device.validUntil);
      // One more read (lmdb, or the cluster's local mirror) closes the gap between the handshake's check and now.
      void registry.identity(device.id).then((identity) => recheckAfterAccept(session, identity), () => undefined);
      // The newer connection wins only once it has shown life (takeover.ts); with none live it is attached now.
      if (current || device.heldElsewhere) takeovers.hold(session, () => attach(session, device.method, device.heldElsewhere !== undefined));
      else attach(session, device.method, false);
    },
  });

  function attach(session: DeviceSession, method: string, fromElsewhere: boolean): void {
    takeovers.supersede(session.deviceId);
    const previous = runtimes.attach(session, session.runtime);
    if (previous) {
      // Protocol 2: the newer connection wins; the old one learns why with 4000.
      const replaced = new PulsewireError('PW_ERR_REPLACED');
      previous.end(replaced.spec.close!, replaced.closeReason, 'replaced');
    }
    liveness.add(session);
    // Taken over from another node: the device never stopped being online (that node closes its connection with 4000).
    status.online(runtimes.get(session.deviceId), session, method, previous !== undefined || fromElsewhere);
  }

  // Cluster mode: a device this node holds that another node claimed (it connected there) is let go with
  // 4000, without an "offline" (the other node said "online"); one an operator removed is closed with 1008.
  if (app.cluster) {
    const handover = app.cluster.handover;
    const stopWatching = presence.watch((deviceId, stored) => {
      const runtime = runtimes.peek(deviceId);
      const session = runtime?.session;
      if (!runtime || !session || !stored || stored.node === config.nodeId) return;
      void session.claim?.then((claim) => {
        if (!claim || runtime.session !== session || (stored.epoch ?? 0) <= claim.epoch) return;
        if (stored.node === undefined) {
          const revoked = new PulsewireError('PW_ERR_REVOKED');
          session.end(revoked.spec.close!, revoked.closeReason, 'kicked');
          return;
        }
        runtimes.detach(session);
        liveness.delete(session as DeviceSession);
        app.log.info({ deviceId, node: stored.node }, 'device taken over by another node');
        const replaced = new PulsewireError('PW_ERR_REPLACED');
        session.end(replaced.spec.close!, replaced.closeReason, 'replaced');
        void handover.save(runtime, claim);
      });
    });
    app.addHook('onClose', async () => stopWatching());
  }

  // A device rotated or disabled (by any node's operator) loses its session here (credential-watch.ts).
  const stopCredentialWatch = watchCredentials(app.stores.devices, runtimes, (deviceId, code, reason) => app.gateway.kick(deviceId, code, reason));
  app.addHook('onClose', async () => stopCredentialWatch());

  liveness.start();
  // Runtimes of devices gone for long are forgotten; what must survive is durable (device-runtime.ts).
  const forgetSweep = setInterval(() => {
    runtimes.forgetIdle(config.deviceForgetMs);
  }, Math.min(60_000, Math.max(250, Math.floor(config.deviceForgetMs / 4))));
  forgetSweep.unref();
  app.addHook('onClose', async () => clearInterval(forgetSweep));
  app.addHook('preClose', async () => {
    // Devices told 1001 reconnect at once (full jitter from 0 s). An upgrade request that arrives
    // while the hub closes got fastify's 503 but kept its socket, and server.close() then waited
    // for those until the shutdown deadline (exit 1 after PULSEWIRE_SHUTDOWN_TIMEOUT_MS; the
    // reconnect-storm bench showed it). From here on such a socket is dropped at once.
    app.server.prependListener('upgrade', (_request, socket: Duplex) => socket.destroy());
    liveness.stop();
    const waiting = takeovers.endAll(1001, ERRORS.PW_ERR_SHUTDOWN.message);
    await closeAllSessions(runtimes, waiting, config.shutdownTimeoutMs / 2);
    await status.flush();
  });
}

/**
 * Lets go of the upgrade's HTTP objects, which would otherwise live as long as
 * the device stays connected: @fastify/websocket's 'error' listener on the
 * socket closes over the fastify request and reply (and through them the raw
 * request, its headers and the upgrade's head buffer), and the TCP socket
 * still points at the ServerResponse the plugin made for routing. Heap
 * snapshot at 5,000 idle devices: one of each per device. DeviceSession
 * handles 'error' itself (ws closes the socket after reporting it), so the
 * plugin's listener, which only logs and terminates, is not needed.
 */
function releaseUpgradeObjects(socket: WebSocket, request: FastifyRequest): void {
  socket.removeAllListeners('error');
  const tcp = request.raw.socket as Socket & { _httpMessage?: unknown };
  if (tcp?._httpMessage instanceof ServerResponse) tcp._httpMessage.detachSocket(tcp);
}

function offersSubprotocol(header: string | undefined): boolean {
  return header !== undefined && header.split(',').some((p) => p.trim() === SUBPROTOCOL);
}


/**
 * Shutdown: every device gets 1001 and a bounded time to answer the close
 * handshake; `waiting` (connections that had not taken over yet) got their
 * 1001 already and are waited for alike.
 */
async function closeAllSessions(runtimes: DeviceRuntimes, waiting: DeviceSession[], boundMs: number): Promise<void> {
  const live = [...runtimes.sessions()] as DeviceSession[];
  const reason: OfflineReason = 'hub shutdown';
  for (const s of live) s.end(1001, ERRORS.PW_ERR_SHUTDOWN.message, reason);
  const sessions = [...live, ...waiting];
  const closed = sessions.map((s) => new Promise<void>((resolve) => s.onClosed(resolve)));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(closed), new Promise((r) => { timer = setTimeout(r, boundMs); })]);
  clearTimeout(timer);
  for (const s of sessions) if (!s.isClosed) s.terminate();
}

export default fp(gatewayPlugin, { name: 'pulsewire-gateway', dependencies: ['@fastify/websocket'] });
