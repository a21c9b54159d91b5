/**
 * The page's connection to the live stream (docs/live-stream.md).
 *
 * WebSocket `/v1/live` first; when it cannot even open (a proxy that blocks
 * upgrades) twice in a row, Server-Sent Events `/v1/live/sse`. Either way the
 * session cookie authenticates, never a token in the URL. Every drop is
 * followed by a reconnect after an exponential backoff with jitter; the hub
 * answers each (re)connection with a fresh snapshot, so the page resumes
 * from whole state without a reload. Before each retry the page asks whether
 * the login still holds, so an expired session shows the login screen
 * instead of retrying forever.
 */
import { backoffMs, DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, sseUrl } from './reconnect.js';
import type { LiveFrame, Subscription } from './types.js';

export type Transport = 'ws' | 'sse';

export type ConnectionState =
  | { kind: 'connecting'; transport: Transport; attempt: number }
  | { kind: 'open'; transport: Transport }
  | { kind: 'waiting'; attempt: number; retryAt: number; reason: string }
  | { kind: 'stopped' };

export type LiveClientOptions = {
  onFrame: (frame: LiveFrame) => void;
  onState: (state: ConnectionState) => void;
  /** Resolves false when the session is gone; the client then stops. */
  stillLoggedIn: () => Promise<boolean>;
  onLoggedOut: () => void;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Consecutive WebSocket attempts that never opened before trying SSE. */
  wsFailuresBeforeSse?: number;
};

export function wsUrl(): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/v1/live`;
}

const FRAME_TYPES = ['hello', 'snapshot', 'events', 'error'] as const;

export class LiveClient {
  readonly #opts: Required<Omit<LiveClientOptions, 'onFrame' | 'onState' | 'stillLoggedIn' | 'onLoggedOut'>> & LiveClientOptions;
  #subscription: Subscription = {};
  #ws: WebSocket | undefined;
  #sse: EventSource | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #wsFailures = 0;
  #sseFailures = 0;
  #stopped = true;
  #state: ConnectionState = { kind: 'stopped' };
  readonly #onBrowserOnline = () => { if (this.#state.kind === 'waiting') this.retryNow(); };

  constructor(opts: LiveClientOptions) {
    this.#opts = { baseDelayMs: DEFAULT_BASE_DELAY_MS, maxDelayMs: DEFAULT_MAX_DELAY_MS, wsFailuresBeforeSse: 2, ...opts };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  start(subscription: Subscription = {}): void {
    this.#subscription = subscription;
    if (!this.#stopped) return;
    this.#stopped = false;
    window.addEventListener('online', this.#onBrowserOnline);
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    window.removeEventListener('online', this.#onBrowserOnline);
    clearTimeout(this.#timer);
    this.#closeTransports();
    this.#setState({ kind: 'stopped' });
  }

  /** Replaces the filter; the hub answers with a new snapshot. */
  subscribe(subscription: Subscription): void {
    this.#subscription = subscription;
    if (this.#ws?.readyState === WebSocket.OPEN) {
      this.#ws.send(JSON.stringify({ type: 'subscribe', devices: subscription.devices ?? [], names: subscription.names ?? [] }));
    } else if (this.#sse) {
      // SSE carries the filter in its URL: reconnect with the new one.
      this.#closeTransports();
      this.#connect();
    }
  }

  retryNow(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#closeTransports();
    this.#connect();
  }

  #setState(state: ConnectionState): void {
    this.#state = state;
    this.#opts.onState(state);
  }

  #connect(): void {
    const useSse = this.#wsFailures >= this.#opts.wsFailuresBeforeSse;
    if (useSse) this.#connectSse();
    else this.#connectWs();
  }

  #deliver(data: string): void {
    let frame: LiveFrame;
    try {
      frame = JSON.parse(data) as LiveFrame;
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    // The backoff starts over only once the hub has shown it is healthy (a snapshot), so a
    // hub that accepts and at once drops the connection still sees growing delays.
    if (frame.type === 'snapshot') this.#attempt = 0;
    this.#opts.onFrame(frame);
  }

  #connectWs(): void {
    this.#setState({ kind: 'connecting', transport: 'ws', attempt: this.#attempt });
    let opened = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(wsUrl());
    } catch {
      this.#wsFailures++;
      this.#scheduleReconnect('WebSocket unavailable');
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      opened = true;
      this.#wsFailures = 0;
      this.#sseFailures = 0;
      this.#setState({ kind: 'open', transport: 'ws' });
      const { devices, names } = this.#subscription;
      if (devices?.length || names?.length) ws.send(JSON.stringify({ type: 'subscribe', devices: devices ?? [], names: names ?? [] }));
    };
    ws.onmessage = (event) => {
      if (typeof event.data === 'string') this.#deliver(event.data);
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      if (this.#stopped) return;
      if (!opened) this.#wsFailures++;
      this.#scheduleReconnect(opened ? `connection closed (${event.code}${event.reason ? ` ${event.reason}` : ''})` : 'cannot connect');
    };
  }

  #connectSse(): void {
    this.#setState({ kind: 'connecting', transport: 'sse', attempt: this.#attempt });
    let opened = false;
    const sse = new EventSource(sseUrl(this.#subscription), { withCredentials: true });
    this.#sse = sse;
    sse.onopen = () => {
      opened = true;
      this.#sseFailures = 0;
      this.#setState({ kind: 'open', transport: 'sse' });
    };
    // Unnamed events arrive at onmessage, named ones (event: snapshot) at their listener; never both.
    sse.onmessage = (event: MessageEvent<string>) => this.#deliver(event.data);
    for (const type of FRAME_TYPES) sse.addEventListener(type, (event) => this.#deliver((event as MessageEvent<string>).data));
    sse.onerror = () => {
      if (this.#sse !== sse) return;
      // We run our own backoff (and re-check the login) rather than EventSource's fixed retry.
      sse.close();
      this.#sse = undefined;
      if (this.#stopped) return;
      if (!opened && ++this.#sseFailures >= 2) {
        // Neither transport opens: start over with the WebSocket, it may be back.
        this.#wsFailures = 0;
        this.#sseFailures = 0;
      }
      this.#scheduleReconnect(opened ? 'event stream closed' : 'cannot connect');
    };
  }

  #closeTransports(): void {
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    }
    this.#sse?.close();
    this.#sse = undefined;
  }

  #scheduleReconnect(reason: string): void {
    clearTimeout(this.#timer);
    this.#attempt++;
    const delay = backoffMs(this.#attempt, this.#opts.baseDelayMs, this.#opts.maxDelayMs);
    this.#setState({ kind: 'waiting', attempt: this.#attempt, retryAt: Date.now() + delay, reason });
    this.#timer = setTimeout(() => void this.#retry(), delay);
  }

  async #retry(): Promise<void> {
    if (this.#stopped) return;
    let loggedIn = true;
    try {
      loggedIn = await this.#opts.stillLoggedIn();
    } catch {
      // The hub itself is unreachable: keep backing off.
      if (!this.#stopped) this.#scheduleReconnect('hub unreachable');
      return;
    }
    if (this.#stopped) return;
    if (!loggedIn) {
      this.stop();
      this.#opts.onLoggedOut();
      return;
    }
    this.#connect();
  }
}
