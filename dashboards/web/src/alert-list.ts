/**
 * The firing alerts as a list, for the fleet view (every device's) and the
 * device view (its own): rule name, device, series, the value that made it
 * fire, and since when. Rendered from the store, which the live stream keeps
 * current (snapshot: what fires now; events: each firing and resolving).
 */
import { formatValue, h, timeAgo } from './frame.js';
import type { AlertView } from './types.js';

/** What the condition says, short: "> 80", "< 10", "silent 300 s". */
export function describeCondition(alert: AlertView): string {
  const c = alert.condition;
  return c.kind === 'stale' ? `no reading for ${c.afterSeconds} s` : `${c.kind === 'above' ? '>' : '<'} ${c.threshold}`;
}

/**
 * Most alerts a list shows: a fleet-wide rule can fire for thousands of
 * devices at once (a site losing its network), and the page must stay
 * responsive; the count says how many fire, GET /v1/alerts lists them all.
 */
export const MAX_LISTED_ALERTS = 50;

/** Renders `alerts` (oldest first, as the store keeps them) newest first, at most MAX_LISTED_ALERTS of them. */
export function renderAlerts(list: HTMLElement, alerts: readonly AlertView[], withDevice: boolean): void {
  if (alerts.length === 0) {
    list.replaceChildren(h('li', { class: 'muted' }, 'none firing'));
    return;
  }
  const shown = alerts.slice(-MAX_LISTED_ALERTS).reverse();
  const more = alerts.length - shown.length;
  list.replaceChildren(...shown.map((alert) =>
    h('li', { 'data-alert': alert.id, 'data-device': alert.deviceId },
      h('span', { class: 'badge alert' }, 'firing'),
      h('b', { class: 'rule' }, alert.ruleName),
      withDevice ? h('a', { href: `#/device/${encodeURIComponent(alert.deviceId)}` }, alert.deviceId) : undefined,
      h('span', { class: 'muted' }, `${alert.series} ${describeCondition(alert)}${alert.value === undefined ? '' : ` · ${formatValue(alert.value)}`}`),
      h('span', { class: 'muted since' }, timeAgo(alert.firingSince)))),
  ...(more > 0 ? [h('li', { class: 'muted', 'data-testid': 'more-alerts' }, `and ${more} more, older`)] : []));
}
