/**
 * Alert rules as the operator API sees them: create, read, list, change,
 * delete, over the `alertRules` store. The JSON schemas (api/rules.ts) check
 * types and ranges; the rules they cannot say (exactly one of ids or prefix,
 * clearAt on the right side of the threshold, no duration for staleness) are
 * checked here. Every write is also handed to the engine at once, so this
 * node evaluates the new rule from the next reading; other nodes hear of it
 * through the store's watch.
 */
import { randomBytes } from 'node:crypto';
import { PulsewireError } from '../errors/catalog.js';
import { collect, type Bucket } from '../stores/bucket.js';
import type { AlertEngine } from './alert-engine.js';
import type { AlertRule, NewRule, RuleDevices, RulePatch } from './types.js';

/** Rules per hub: each costs a little on every reading of its series, so there is a bound. */
export const MAX_RULES = 1000;

export class RuleService {
  readonly #bucket: Bucket<AlertRule>;
  readonly #engine: AlertEngine;
  readonly #now: () => number;

  constructor(opts: { bucket: Bucket<AlertRule>; engine: AlertEngine; now?: () => number }) {
    this.#bucket = opts.bucket;
    this.#engine = opts.engine;
    this.#now = opts.now ?? Date.now;
  }

  async create(input: NewRule): Promise<AlertRule> {
    const existing = await collect(this.#bucket.entries(), MAX_RULES);
    if (existing.length >= MAX_RULES) throw new PulsewireError('PW_ERR_RULES_FULL', `at most ${MAX_RULES} rules`);
    const at = new Date(this.#now()).toISOString();
    const rule = checked({
      id: `r${this.#now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`,
      name: input.name, devices: devicesOf(input.devices), series: input.series, condition: input.condition,
      forSeconds: input.forSeconds ?? 0, createdAt: at, updatedAt: at,
    });
    if ((await this.#bucket.create(rule.id, rule)) === undefined) throw new PulsewireError('PW_ERR_INTERNAL', 'rule id taken');
    this.#engine.applyRule(rule);
    return rule;
  }

  async get(id: string): Promise<AlertRule> {
    const entry = await this.#bucket.get(id);
    if (!entry) throw new PulsewireError('PW_ERR_RULE_NOT_FOUND', id);
    return entry.value;
  }

  async list(): Promise<AlertRule[]> {
    return (await collect(this.#bucket.entries())).map((entry) => entry.value);
  }

  /** Changes the fields given; a concurrent change to the same rule is retried on the newer version. */
  async update(id: string, patch: RulePatch): Promise<AlertRule> {
    for (;;) {
      const entry = await this.#bucket.get(id);
      if (!entry) throw new PulsewireError('PW_ERR_RULE_NOT_FOUND', id);
      const current = entry.value;
      const rule = checked({
        ...current,
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.devices !== undefined ? { devices: devicesOf(patch.devices) } : {}),
        ...(patch.series !== undefined ? { series: patch.series } : {}),
        ...(patch.condition !== undefined ? { condition: patch.condition } : {}),
        ...(patch.forSeconds !== undefined ? { forSeconds: patch.forSeconds } : {}),
        // Strictly later than the last version: the engine tells versions apart by it.
        updatedAt: new Date(Math.max(this.#now(), Date.parse(current.updatedAt) + 1)).toISOString(),
      });
      if ((await this.#bucket.update(id, rule, entry.revision)) === undefined) continue;
      this.#engine.applyRule(rule);
      return rule;
    }
  }

  /** Deletes the rule; its firing alerts resolve. */
  async remove(id: string): Promise<void> {
    if (!(await this.#bucket.delete(id))) throw new PulsewireError('PW_ERR_RULE_NOT_FOUND', id);
    this.#engine.ruleRemoved(id);
  }
}

function devicesOf(devices: { ids?: string[] | undefined; prefix?: string | undefined }): RuleDevices {
  if ((devices.ids === undefined) === (devices.prefix === undefined)) {
    throw new PulsewireError('PW_ERR_RULE_INVALID', 'devices: exactly one of ids or prefix');
  }
  return devices.ids !== undefined ? { ids: [...new Set(devices.ids)] } : { prefix: devices.prefix! };
}

/** The rules a JSON schema cannot state. */
function checked(rule: AlertRule): AlertRule {
  const { condition } = rule;
  if (condition.kind === 'stale') {
    if (rule.forSeconds !== 0) {
      throw new PulsewireError('PW_ERR_RULE_INVALID', 'forSeconds does not apply to stale: afterSeconds is its duration');
    }
    return rule;
  }
  const { clearAt, threshold } = condition;
  if (clearAt !== undefined && (condition.kind === 'above' ? clearAt > threshold : clearAt < threshold)) {
    throw new PulsewireError('PW_ERR_RULE_INVALID', `clearAt must be ${condition.kind === 'above' ? 'at or below' : 'at or above'} the threshold (hysteresis)`);
  }
  return rule;
}
