/**
 * Operator routes for alert rules and the alerts firing now (docs/webhooks.md,
 * "Alert rules"). Reading needs `read`; writing rules needs `operate`, as
 * jobs do: a rule changes no device, but it decides who gets woken up.
 * Every write is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { AlertEngine } from '../alerts/alert-engine.js';
import type { RuleService } from '../alerts/rule-service.js';
import type { NewRule, RulePatch } from '../alerts/types.js';
import { audited } from '../audit/audit-hook.js';
import { needs } from '../operators/scopes.js';
import { DEVICE_ID_PATTERN, MAX_SENML_NAME_LENGTH } from '../protocol/limits.js';
import { errorView } from './schemas.js';

/** Most device ids one rule may list; larger groups are selected by prefix. */
const MAX_RULE_IDS = 10_000;

const threshold = { type: 'number', description: 'fires when the value is strictly beyond it' } as const;
const clearAt = {
  type: 'number',
  description: 'hysteresis: a firing alert resolves only once the value is back at or past this (default: the threshold); at or below it for `above`, at or above for `below`',
} as const;

export const conditionSchema = {
  oneOf: [
    {
      type: 'object', additionalProperties: false, required: ['kind', 'threshold'],
      properties: { kind: { type: 'string', enum: ['above', 'below'] }, threshold, clearAt },
    },
    {
      type: 'object', additionalProperties: false, required: ['kind', 'afterSeconds'],
      properties: { kind: { type: 'string', enum: ['stale'] }, afterSeconds: { type: 'integer', minimum: 1, maximum: 7 * 86_400, description: 'fires when no reading of the series came for this long' } },
    },
  ],
} as const;

const devicesSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'exactly one of ids or prefix ("" for every device)',
  properties: {
    ids: { type: 'array', minItems: 1, maxItems: MAX_RULE_IDS, items: { type: 'string', pattern: DEVICE_ID_PATTERN.source } },
    prefix: { type: 'string', pattern: '^[A-Za-z0-9._-]{0,64}$' },
  },
} as const;

const ruleFields = {
  name: { type: 'string', minLength: 1, maxLength: 128 },
  devices: devicesSchema,
  series: { type: 'string', minLength: 1, maxLength: MAX_SENML_NAME_LENGTH, description: 'the SenML name (bn + n) of the series, exactly' },
  condition: conditionSchema,
  forSeconds: { type: 'integer', minimum: 0, maximum: 86_400, description: 'how long a threshold must stay crossed before the alert fires (default 0; not for stale)' },
} as const;

const newRuleBody = { type: 'object', required: ['name', 'devices', 'series', 'condition'], additionalProperties: false, properties: ruleFields } as const;
const rulePatchBody = { type: 'object', minProperties: 1, additionalProperties: false, properties: ruleFields } as const;

/** A condition as answered: one object with every field either kind may have (response schemas serialize, not validate). */
const conditionView = {
  type: 'object',
  properties: { kind: { type: 'string', enum: ['above', 'below', 'stale'] }, threshold: { type: 'number' }, clearAt: { type: 'number' }, afterSeconds: { type: 'integer' } },
} as const;

export const ruleView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    devices: { type: 'object', properties: { ...devicesSchema.properties } },
    series: { type: 'string' },
    condition: conditionView,
    forSeconds: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** AlertView (alerts/types.ts) as answered and as webhooks and the live stream carry it. */
export const alertView = {
  type: 'object',
  properties: {
    id: { type: 'string', description: '`ruleId/deviceId/series`, the same for firing and resolving' },
    ruleId: { type: 'string' },
    ruleName: { type: 'string' },
    deviceId: { type: 'string' },
    series: { type: 'string' },
    condition: conditionView,
    state: { type: 'string', enum: ['firing', 'resolved'] },
    value: { type: 'number', description: 'the reading that made it fire or resolve (absent for staleness)' },
    firingSince: { type: 'integer', description: 'epoch ms when it fired' },
    resolvedAt: { type: 'integer', description: 'epoch ms when it resolved' },
  },
} as const;

const ruleIdParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;

export async function ruleRoutes(app: FastifyInstance, opts: { rules: RuleService; engine: AlertEngine }): Promise<void> {
  const { rules, engine } = opts;

  app.post('/v1/rules', {
    schema: { ...audited('rule.create'), ...needs('operate'),
      summary: 'Create an alert rule: a series crossing a threshold for a while, or going quiet',
      description: '201 with the rule and a Location header; evaluated from the next reading on (docs/webhooks.md, "Alert rules").',
      body: newRuleBody,
      response: { 201: ruleView, 400: errorView, 409: errorView },
    },
  }, async (request, reply) => {
    const rule = await rules.create(request.body as NewRule);
    return reply.code(201).header('location', `/v1/rules/${rule.id}`).send(rule);
  });

  app.get('/v1/rules', {
    schema: { ...needs('read'), summary: 'Every alert rule, oldest first', response: { 200: { type: 'object', properties: { rules: { type: 'array', items: ruleView } } } } },
  }, async () => ({ rules: await rules.list() }));

  app.get('/v1/rules/:id', {
    schema: { ...needs('read'), summary: 'One alert rule', params: ruleIdParam, response: { 200: ruleView, 404: errorView } },
  }, async (request) => rules.get((request.params as { id: string }).id));

  app.patch('/v1/rules/:id', {
    schema: { ...audited('rule.update'), ...needs('operate'),
      summary: 'Change fields of an alert rule',
      description: 'A new threshold or duration applies from the next reading; changing the series, the devices or the kind of condition resolves what the rule had firing.',
      params: ruleIdParam,
      body: rulePatchBody,
      response: { 200: ruleView, 400: errorView, 404: errorView },
    },
  }, async (request) => rules.update((request.params as { id: string }).id, request.body as RulePatch));

  app.delete('/v1/rules/:id', {
    schema: { ...audited('rule.delete'), ...needs('operate'),
      summary: 'Delete an alert rule; its firing alerts resolve',
      params: ruleIdParam,
      response: { 204: { type: 'null' }, 404: errorView },
    },
  }, async (request, reply) => {
    await rules.remove((request.params as { id: string }).id);
    return reply.code(204).send();
  });

  app.get('/v1/alerts', {
    schema: { ...needs('read'),
      summary: 'Alerts firing now, oldest first',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { device: { type: 'string', pattern: DEVICE_ID_PATTERN.source }, rule: { type: 'string', maxLength: 64 } },
      },
      response: { 200: { type: 'object', properties: { alerts: { type: 'array', items: alertView } } }, 400: errorView },
    },
  }, async (request) => {
    const { device, rule } = request.query as { device?: string; rule?: string };
    const alerts = engine.firing()
      .filter((alert) => (device === undefined || alert.deviceId === device) && (rule === undefined || alert.ruleId === rule))
      .sort((a, b) => a.firingSince - b.firingSince || (a.id < b.id ? -1 : 1));
    return { alerts };
  });
}
