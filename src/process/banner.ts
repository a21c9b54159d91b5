/**
 * The start banner: where to look, what it holds, how to log in. Printed by
 * the process operators started (the hub, or a hub's primary process when it
 * runs workers), once it listens.
 */
import type { Config } from '../config/index.js';
import { redact as redactNatsUrl } from '../cluster/nats-link.js';
import { DEVICE_PATH } from '../protocol/messages.js';

export type BannerFacts = {
  address: string;
  /** Device connections the open-files limits allow, all processes together (undefined: unlimited). */
  capacity: number | undefined;
  /** How the capacity comes about, e.g. "3 workers x 19,936". */
  capacityDetail?: string;
  /** The managed influxd's URL and files, or the configured one. */
  influx: string;
  /** The cluster line: node, NATS, nodes alive; undefined with one process. */
  cluster?: string;
};

export function bannerLines(config: Config, facts: BannerFacts): string[] {
  const { address } = facts;
  const base = new URL(address);
  const wsScheme = config.tls ? 'wss' : 'ws';
  return [
    '',
    `  Pulsewire hub on ${address}`,
    `  dashboard: ${address}/  (log in with the operator token)`,
    `  devices:   ${wsScheme}://${base.host}${DEVICE_PATH}  (subprotocol pulsewire.v1)`,
    `  API:       ${address}/v1/devices   OpenAPI: ${address}/openapi.json`,
    `  metrics:   ${address}/metrics      ready: ${address}/readyz`,
    `  capacity:  about ${facts.capacity ?? 'unlimited'} device connections (open-files limit${facts.capacityDetail ? `: ${facts.capacityDetail}` : ''})`,
    `  InfluxDB:  ${facts.influx}`,
    ...(facts.cluster ? [`  cluster:   ${facts.cluster}`] : []),
    config.operatorTokenGenerated
      ? `  operator token (generated; set PULSEWIRE_OPERATOR_TOKEN to keep one): ${config.operatorToken}`
      : '  operator token: from PULSEWIRE_OPERATOR_TOKEN',
    '',
  ];
}

/** "node n1 of "pulsewire" via NATS nats://...". */
export function clusterLine(config: Config, nodesAlive: number): string | undefined {
  if (!config.cluster) return undefined;
  return `node ${config.nodeId} of "${config.cluster.name}" via NATS ${config.cluster.servers.map(redactNatsUrl).join(', ')} (${nodesAlive} nodes alive)`;
}

/** An InfluxDB URL with its password hidden. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
