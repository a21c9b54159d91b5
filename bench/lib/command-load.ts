/**
 * The operator side of the `commands` scenario, run as its own process
 * (pinned to the load core): commands issued open-loop at a fixed rate to
 * random devices, each a `POST /v1/devices/:id/commands?wait=S` that answers
 * with the command's final state. Open-loop means a slow answer never delays
 * the next command, so queueing anywhere shows up in the round trip instead of
 * lowering the rate. Requests go over a keep-alive pool (node:http Agent), as
 * an operator's backend would send them; a command waiting for a free socket
 * in the pool counts that wait too (the pool's size is in the result).
 */
import { Agent, request } from 'node:http';
import { latencyFigures, type LatencyFigures } from './latency-figures.js';
import { serve } from './ipc.js';

export type CommandLoadArgs = {
  baseUrl: string;
  /** Operator bearer token (the relay ignores it). */
  token?: string;
  deviceIds: string[];
  commandsPerSecond: number;
  seconds: number;
  /** The `wait` query parameter: how long one request may wait for the final state. */
  waitS: number;
  name: string;
  args: unknown;
  /** Round trips of commands issued in the first warmupS are not in the percentiles (still counted). */
  warmupS: number;
  /** roundTripSettledMs leaves out this many seconds more after the warm-up (default SETTLE_S). */
  settleS?: number;
  /** Sockets in the keep-alive pool. */
  maxSockets: number;
};

/** Seconds after the warm-up that roundTripSettledMs leaves out. */
export const SETTLE_S = 4;

export type CommandLoadResult = {
  offered: number;
  issued: number;
  /** Final statuses of the 200 answers, by name (succeeded, failed, rejected, timed-out, ...). */
  finals: Record<string, number>;
  /** 202: the wait ended before a final state. */
  notFinal: number;
  /** Other HTTP codes, by code. */
  httpErrors: Record<string, number>;
  /** Socket errors and timeouts of the request itself. */
  requestErrors: number;
  /** No answer at all by the end of the drain, though the request had a socket (it may have reached the server). */
  unanswered: number;
  /** Still waiting for a socket of the pool at the end of the drain: never sent to the server, so not the server's loss. */
  neverSent: number;
  /** From the first command issued to the last final answer, s. */
  spanS: number;
  /** Final answers per second over the load window only. */
  completedInWindowPerSecond: number;
  /** API call to the final answer, ms (commands issued after the warm-up). */
  roundTripMs: LatencyFigures;
  /**
   * The same for the commands issued from settleS after the warm-up on: the
   * phase without its first seconds, where a step from the previous phase's
   * rate shows (at 1,000/s every round trip over 100 ms of a run on
   * 2026-12-07 came in those seconds). Context for roundTripMs, not a
   * replacement: a step in load is part of what the hub meets.
   */
  roundTripSettledMs: LatencyFigures;
  /** API call to the server's sentAt, ms (same host, millisecond clock). */
  toSentMs: LatencyFigures;
  /** sentAt to completedAt as the server recorded them, ms. */
  sentToFinalMs: LatencyFigures;
  /**
   * The load's own health: how late each command was issued against its
   * schedule (this process starved of CPU), and how long it waited for a
   * socket of the pool. Either one large means the figures above are partly
   * the load generator's, not the subject's.
   */
  issueLagMs: LatencyFigures;
  poolWaitMs: LatencyFigures;
  cpuSeconds: number;
  maxSockets: number;
};

type Tally = Pick<CommandLoadResult, 'issued' | 'finals' | 'notFinal' | 'httpErrors' | 'requestErrors' | 'unanswered' | 'neverSent'> & {
  roundTrips: number[]; settledRoundTrips: number[]; toSent: number[]; sentToFinal: number[]; issueLag: number[]; poolWait: number[]; inWindow: number; lastAnswerAt: number;
};

/** A request not answered yet: whether the pool gave it a socket. */
type Open = { hasSocket: boolean };

function issue(agent: Agent, a: CommandLoadArgs, tally: Tally, record: boolean, settled: boolean, stopAt: number, open: Open, done: () => void): void {
  const deviceId = a.deviceIds[Math.floor(Math.random() * a.deviceIds.length)]!;
  const body = JSON.stringify({ name: a.name, args: a.args });
  const startedAt = performance.now();
  const wallStart = Date.now();
  const req = request(`${a.baseUrl}/v1/devices/${encodeURIComponent(deviceId)}/commands?wait=${a.waitS}`, {
    method: 'POST', agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(a.token ? { authorization: `Bearer ${a.token}` } : {}) },
  }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const took = performance.now() - startedAt;
      tally.lastAnswerAt = Date.now();
      if (res.statusCode === 200) {
        const view = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { status: string; sentAt?: string; completedAt?: string };
        tally.finals[view.status] = (tally.finals[view.status] ?? 0) + 1;
        if (tally.lastAnswerAt <= stopAt) tally.inWindow++;
        if (record) {
          tally.roundTrips.push(took);
          if (settled) tally.settledRoundTrips.push(took);
          if (view.sentAt) tally.toSent.push(Date.parse(view.sentAt) - wallStart);
          if (view.sentAt && view.completedAt) tally.sentToFinal.push(Date.parse(view.completedAt) - Date.parse(view.sentAt));
        }
      } else if (res.statusCode === 202) {
        tally.notFinal++;
      } else {
        const code = String(res.statusCode);
        tally.httpErrors[code] = (tally.httpErrors[code] ?? 0) + 1;
      }
      done();
    });
  });
  req.once('socket', () => {
    open.hasSocket = true;
    if (record) tally.poolWait.push(performance.now() - startedAt);
  });
  req.setTimeout((a.waitS + 30) * 1000, () => req.destroy(new Error('request timed out')));
  req.on('error', () => {
    tally.requestErrors++;
    done();
  });
  req.end(body);
}

async function run(a: CommandLoadArgs): Promise<CommandLoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: a.maxSockets });
  const tally: Tally = { issued: 0, finals: {}, notFinal: 0, httpErrors: {}, requestErrors: 0, unanswered: 0, neverSent: 0, roundTrips: [], settledRoundTrips: [], toSent: [], sentToFinal: [], issueLag: [], poolWait: [], inWindow: 0, lastAnswerAt: 0 };
  const open = new Set<Open>();
  const cpu0 = process.cpuUsage();
  const startedAt = Date.now();
  const stopAt = startedAt + a.seconds * 1000;
  const offered = Math.round(a.commandsPerSecond * a.seconds);
  const recordFrom = startedAt + a.warmupS * 1000;
  const settledFrom = recordFrom + (a.settleS ?? SETTLE_S) * 1000;
  await new Promise<void>((resolve) => {
    // Every 5 ms, issue what is due by now: the rate holds even when one tick runs late.
    const pacer = setInterval(() => {
      const now = Date.now();
      const due = Math.min(offered, Math.floor((a.commandsPerSecond * (now - startedAt)) / 1000));
      while (tally.issued < due) {
        const record = now >= recordFrom;
        if (record) tally.issueLag.push(now - (startedAt + (tally.issued * 1000) / a.commandsPerSecond));
        tally.issued++;
        const request: Open = { hasSocket: false };
        open.add(request);
        issue(agent, a, tally, record, now >= settledFrom, stopAt, request, () => open.delete(request));
      }
      if (now >= stopAt) {
        clearInterval(pacer);
        resolve();
      }
    }, 5);
  });
  // Drain: every request ends by itself (answer, 202 at the wait, or its own timeout).
  const drainUntil = Date.now() + (a.waitS + 35) * 1000;
  while (open.size > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
  for (const request of open) {
    if (request.hasSocket) tally.unanswered++;
    else tally.neverSent++;
  }
  agent.destroy();
  const cpu = process.cpuUsage(cpu0);
  const { roundTrips, settledRoundTrips, toSent, sentToFinal, issueLag, poolWait, inWindow, lastAnswerAt, ...counts } = tally;
  return {
    ...counts,
    offered,
    spanS: (Math.max(lastAnswerAt, stopAt) - startedAt) / 1000,
    completedInWindowPerSecond: inWindow / a.seconds,
    roundTripMs: latencyFigures(roundTrips),
    roundTripSettledMs: latencyFigures(settledRoundTrips),
    toSentMs: latencyFigures(toSent),
    sentToFinalMs: latencyFigures(sentToFinal),
    issueLagMs: latencyFigures(issueLag),
    poolWaitMs: latencyFigures(poolWait),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxSockets: a.maxSockets,
  };
}

serve({ run });
