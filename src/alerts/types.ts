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
