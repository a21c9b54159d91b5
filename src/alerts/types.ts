/**
 * The shape of an alert as every consumer sees it: the bus, the live stream,
 * webhooks, InfluxDB's `alert` measurement and GET /v1/alerts. One alert is
 * one rule on one device's series; the rule engine (src/alerts) owns its life.
 */

/** What a rule watches for: a threshold crossed, or no reading for a while. */
export type AlertCondition =
  | { kind: 'above'; threshold: number; clearAt?: number }
  | { kind: 'below'; threshold: number; clearAt?: number }
  | { kind: 'stale'; afterSeconds: number };

export type AlertState = 'firing' | 'resolved';

export type AlertView = {
  /** `${ruleId}/${deviceId}/${series}`: stable across firing and resolving, so receivers can pair them. */
  id: string;
  ruleId: string;
  ruleName: string;
  deviceId: string;
  series: string;
  condition: AlertCondition;
  state: AlertState;
  /** The reading that made it fire or resolve (absent for staleness). */
  value?: number;
  /** Epoch ms when the condition started to hold for the whole duration, i.e. when it fired. */
  firingSince: number;
  /** Epoch ms when it resolved; absent while firing. */
  resolvedAt?: number;
};

/**
 * Which devices a rule watches: exactly one of a list of ids or an id prefix
 * ('' is every device). Checked per reading only after the series name
 * matched, so a rule costs nothing for the series it does not watch.
 */
export type RuleDevices = { ids: string[]; prefix?: undefined } | { prefix: string; ids?: undefined };

/** An alert rule as stored and as GET /v1/rules shows it. */
export type AlertRule = {
  id: string;
  name: string;
  devices: RuleDevices;
  /** The SenML name of the series (bn + n), exactly. */
  series: string;
  condition: AlertCondition;
  /**
   * How long a threshold condition must hold before the alert fires (0: at
   * the first reading that crosses). Not used by `stale`, whose afterSeconds
   * is its duration.
   */
  forSeconds: number;
  createdAt: string;
  updatedAt: string;
};

/** The body of POST /v1/rules. */
export type NewRule = Pick<AlertRule, 'name' | 'devices' | 'series' | 'condition'> & { forSeconds?: number };

/** The body of PATCH /v1/rules/:id: any of the fields, the others kept. */
export type RulePatch = Partial<NewRule>;

/** The alert id of one rule on one device's series (AlertView.id). */
export function alertId(ruleId: string, deviceId: string, series: string): string {
  return `${ruleId}/${deviceId}/${series}`;
}
