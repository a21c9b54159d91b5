/**
 * Operator routes for the device registry: register or rotate (the secret is
 * shown once; see registry/device-registry.ts for what a rotation ends),
 * disable and enable, remove (closes the device's connection with 1008), list and read.
 * Live fields come from the gateway's in-memory runtime; the registry holds
 * what survives a restart.
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import type { DeviceRecord } from '../registry/device-registry.js';
import { deviceIdParam, errorView } from './schemas.js';
import { enrollmentKeyId } from '../registry/secrets.js';

/** Longest grace period of a rotation: long enough to reach a sleepy fleet, short enough that an old secret ends. */
const MAX_GRACE_S = 30 * 86_400;
import { needs } from '../operators/scopes.js';
import { audited } from '../audit/audit-hook.js';

const deviceView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    provisioning: { type: 'string', enum: ['registered', 'enrollment', 'certificate'] },
    createdAt: { type: 'string', format: 'date-time' },
    online: { type: 'boolean' },
    connectedAt: { type: 'string', format: 'date-time', nullable: true },
    lastSeen: { type: 'string', format: 'date-time', nullable: true },
    offlineReason: { type: 'string', nullable: true },
    remoteAddress: { type: 'string', nullable: true },
    messagesIn: { type: 'integer' },
    node: { type: 'string', nullable: true, description: 'Cluster mode: the node holding the device while it is online' },
    disabled: { type: 'boolean', description: 'refused at the handshake (403) until enabled again' },
    enrollmentKey: {
      type: 'object', nullable: true,
      description: 'the enrollment key the device last authenticated with: its fingerprint, and whether it is the current one (first in PULSEWIRE_ENROLLMENT_KEY)',
      properties: { id: { type: 'string' }, current: { type: 'boolean' } },
    },
    enrollmentEndsAt: { type: 'string', format: 'date-time', nullable: true, description: 'from then on the enrollment-derived secret no longer works for this device' },
    previousSecretUntil: { type: 'string', format: 'date-time', nullable: true, description: 'the secret replaced by the last rotation works until then' },
  },
} as const;

const rotationBody = {
  // Nullable: a PUT without a body (registering, or a plain rotation) is valid too (fastify validates it as null).
  type: 'object',
  nullable: true,
  properties: {
    keepEnrollment: { type: 'boolean', description: 'keep the enrollment-derived secret working for this device (default false)' },
    graceS: { type: 'integer', minimum: 0, maximum: MAX_GRACE_S, description: 'seconds the replaced secret keeps working next to the new one (default 0)' },
  },
  additionalProperties: false,
} as const;

export async function deviceRoutes(app: FastifyInstance): Promise<void> {
  const { registry, gateway, online } = app;
  const currentEnrollmentKey = app.config.enrollmentKey === undefined ? undefined : enrollmentKeyId(app.config.enrollmentKey);

  /** A device this node holds: its live session; one held elsewhere: the status its node wrote. */
  const view = (record: DeviceRecord) => {
    const runtime = gateway.runtimes.peek(record.id);
    const session = runtime?.session;
    const s = record.status;
    const isOnline = online.isOnline(record.id, s);
    // Held elsewhere, this node's memory of the device is older than the store's.
    const local = session !== undefined || !isOnline ? runtime : undefined;
    return {
      id: record.id,
      provisioning: record.provisioning,
      createdAt: iso(record.createdAt),
      online: isOnline,
      connectedAt: iso(session?.connectedAt ?? s.connectedAt),
      lastSeen: iso(Math.max(local?.lastSeen ?? 0, s.lastSeen ?? 0) || undefined),
      offlineReason: isOnline ? null : s.offlineReason ?? null,
      remoteAddress: session?.remoteAddress ?? s.remoteAddress ?? null,
      // Until this node's claim is written, the stored count is the one the claim carries on.
      messagesIn: local ? (local.messagesInBefore ?? s.messagesIn) + local.messagesIn : s.messagesIn,
      node: isOnline ? (session !== undefined ? app.config.nodeId : s.node ?? null) : null,
      disabled: record.disabled === true,
      enrollmentKey: record.enrollmentKeyId === undefined ? null : { id: record.enrollmentKeyId, current: record.enrollmentKeyId === currentEnrollmentKey },
      enrollmentEndsAt: iso(record.enrollmentEndsAt),
      previousSecretUntil: record.previousSecretUntil !== undefined && record.previousSecretUntil > Date.now() ? iso(record.previousSecretUntil) : null,
    };
  };

  app.get('/v1/devices', {
    schema: { ...needs('read'),
      summary: 'List devices, key-ordered, paged',
      querystring: {
        type: 'object',
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', maxLength: 200 },
          online: { type: 'boolean' },
          prefix: { type: 'string', pattern: '^[A-Za-z0-9._-]{0,64}$' },
          oldEnrollmentKey: { type: 'boolean', description: 'true: only devices that last enrolled with a previous enrollment key (who still has to move); false: the others' },
          disabled: { type: 'boolean' },
        },
        additionalProperties: false,
      },
      response: {
        200: { type: 'object', properties: { devices: { type: 'array', items: deviceView }, nextCursor: { type: 'string', nullable: true } } },
        400: errorView,
      },
    },
  }, async (request) => {
    const q = request.query as { limit: number; cursor?: string; online?: boolean; prefix?: string; oldEnrollmentKey?: boolean; disabled?: boolean };
    const onOldKey = (record: DeviceRecord) => record.enrollmentKeyId !== undefined && record.enrollmentKeyId !== currentEnrollmentKey;
    const where = q.oldEnrollmentKey === undefined && q.disabled === undefined ? undefined : (record: DeviceRecord) =>
      (q.oldEnrollmentKey === undefined || onOldKey(record) === q.oldEnrollmentKey) && (q.disabled === undefined || (record.disabled === true) === q.disabled);
    // Online is live state; the registry's copy can lag by a write, so filter on the live view.
    const page = await registry.list({
      limit: q.limit, cursor: q.cursor, prefix: q.prefix, online: q.online, isOnline: (record) => online.isOnline(record.id, record.status), ...(where ? { where } : {}),
    });
    return { devices: page.devices.map(view), nextCursor: page.nextCursor ?? null };
  });

  app.get('/v1/devices/:id', {
    schema: { ...needs('read'), summary: 'One device with its live status', params: deviceIdParam, response: { 200: deviceView, 404: errorView } },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const record = await registry.get(id);
    if (!record) throw new PulsewireError('PW_ERR_DEVICE_NOT_FOUND', id);
    return view(record);
  });

  app.put('/v1/devices/:id', {
    schema: { ...audited('device.register'), ...needs('admin'),
      summary: 'Register a device, or rotate its secret (open sessions closed with 4001; the enrollment-derived secret ends unless kept); the secret is returned only here',
      params: deviceIdParam,
      body: rotationBody,
      response: { 201: { type: 'object', properties: { id: { type: 'string' }, secret: { type: 'string' }, rotated: { type: 'boolean' } } } },
    },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = (request.body ?? {}) as { keepEnrollment?: boolean; graceS?: number };
    const { secret, rotated } = await registry.register(id, {
      ...(body.keepEnrollment !== undefined ? { keepEnrollment: body.keepEnrollment } : {}),
      ...(body.graceS !== undefined ? { graceMs: body.graceS * 1000 } : {}),
    });
    if (rotated) request.auditAction = 'device.rotate';
    request.log.info({ deviceId: id, rotated }, rotated ? 'device secret rotated' : 'device registered');
    app.bus.emit('device.registered', { deviceId: id, at: Date.now() });
    // Sessions of this device are closed with 4001 by the credential watch (gateway/credential-watch.ts), on whichever node holds them.
    return reply.code(201).send({ id, secret, rotated });
  });

  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    app.post(`/v1/devices/:id/${verb}`, {
      schema: { ...audited(`device.${verb}`), ...needs('admin'),
        summary: disabled
          ? 'Disable a device: refused at the handshake with 403, open sessions closed with 1008; its commands and state are kept'
          : 'Enable a disabled device again',
        params: deviceIdParam, response: { 200: deviceView, 404: errorView },
      },
    }, async (request) => {
      const { id } = request.params as { id: string };
      if (!(await registry.setDisabled(id, disabled))) throw new PulsewireError('PW_ERR_DEVICE_NOT_FOUND', id);
      request.log.info({ deviceId: id }, disabled ? 'device disabled' : 'device enabled');
      const record = await registry.get(id);
      if (!record) throw new PulsewireError('PW_ERR_DEVICE_NOT_FOUND', id);
      return view(record);
    });
  }

  app.delete('/v1/devices/:id', {
    schema: { ...audited('device.remove'), ...needs('admin'), summary: 'Remove a device and close its connection with 1008', params: deviceIdParam, response: { 204: { type: 'null' }, 404: errorView } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await registry.remove(id))) throw new PulsewireError('PW_ERR_DEVICE_NOT_FOUND', id);
    // Announced before the kick: the close that follows then concerns a device nobody lists any more.
    app.bus.emit('device.removed', { deviceId: id, at: Date.now() });
    const revoked = new PulsewireError('PW_ERR_REVOKED');
    gateway.kick(id, revoked.spec.close!, revoked.closeReason);
    await app.commands.forgetDevice(id);
    await app.deviceState.forgetDevice(id);
    request.log.info({ deviceId: id }, 'device removed');
    return reply.code(204).send();
  });
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
