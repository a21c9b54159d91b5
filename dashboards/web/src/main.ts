/**
 * The operator page: login, then the fleet view (`#/`) or a device view
 * (`#/device/ID`), both fed by one live connection that reconnects by itself.
 */
import './style.css';
import { isLoggedIn, login, logout, mayOperate, whenLoggedOut, whoami, type Operator } from './api.js';
import { DeviceView } from './device-view.js';
import { FleetView } from './fleet-view.js';
import { h } from './frame.js';
import { LiveClient, type ConnectionState } from './live.js';
import { FleetStore } from './store.js';
import type { LiveFrame, Subscription } from './types.js';

const app = document.getElementById('app')!;
const banner = document.getElementById('banner')!;
const conn = document.getElementById('conn')!;
const logoutButton = document.getElementById('logout') as HTMLButtonElement;
const who = document.getElementById('who')!;

const store = new FleetStore();
let view: FleetView | DeviceView | undefined;
let fleetView: FleetView | undefined;
let everOpen = false;
let bannerClock: ReturnType<typeof setInterval> | undefined;
/** The logged-in key; the page leaves out what its scope cannot do. */
let operator: Operator | undefined;

const live = new LiveClient({
  onFrame: (frame: LiveFrame) => {
    switch (frame.type) {
      case 'snapshot': store.applySnapshot(frame); break;
      case 'events': store.applyEvents(frame); break;
      case 'error': console.warn('live stream:', frame.code, frame.message); break;
      default: break;
    }
  },
  onState: showConnection,
  stillLoggedIn: isLoggedIn,
  onLoggedOut: () => showLogin('Your session ended; log in again.'),
});

whenLoggedOut(() => {
  if (!document.querySelector('[data-testid=login-form]')) showLogin('Your session ended; log in again.');
});

function showConnection(state: ConnectionState): void {
  conn.dataset.state = state.kind;
  clearInterval(bannerClock);
  switch (state.kind) {
    case 'open':
      // Back after a drop: the snapshot restores the fleet; the device view re-reads what the stream does not replay.
      if (everOpen && view instanceof DeviceView) view.resync();
      everOpen = true;
      conn.textContent = state.transport === 'ws' ? 'live' : 'live (SSE)';
      conn.dataset.transport = state.transport;
      banner.hidden = true;
      document.body.dataset.live = 'open';
      return;
    case 'connecting':
      conn.textContent = 'connecting…';
      document.body.dataset.live = 'connecting';
      if (everOpen || state.attempt > 0) showBanner('Disconnected from the hub: reconnecting now…');
      return;
    case 'waiting': {
      conn.textContent = 'disconnected';
      document.body.dataset.live = 'disconnected';
      const tick = () => {
        const s = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
        showBanner(`Disconnected from the hub (${state.reason}). Reconnecting in ${s} s (attempt ${state.attempt}); what you see may be out of date.`, true);
      };
      tick();
      bannerClock = setInterval(tick, 1000);
      return;
    }
    case 'stopped':
      conn.textContent = 'not connected';
      document.body.dataset.live = 'stopped';
      banner.hidden = true;
  }
}

function showBanner(text: string, withRetry = false): void {
  const retry = withRetry ? h('button', { type: 'button', class: 'link' }, 'Retry now') : undefined;
  retry?.addEventListener('click', () => live.retryNow());
  banner.replaceChildren(h('span', { 'data-testid': 'banner-text' }, text), ...(retry ? [' ', retry] : []));
  banner.hidden = false;
}

function route(): void {
  const match = /^#\/device\/(.+)$/.exec(location.hash);
  view?.unmount();
  let subscription: Subscription;
  if (match) {
    const device = new DeviceView(decodeURIComponent(match[1]!), store, { mayOperate: mayOperate(operator) });
    view = device;
    subscription = device.subscription;
  } else {
    fleetView ??= new FleetView(store);
    view = fleetView;
    subscription = {};
  }
  view.mount(app);
  document.title = match ? `${decodeURIComponent(match[1]!)} · Pulsewire` : 'Fleet · Pulsewire';
  if (live.state.kind === 'stopped') live.start(subscription);
  else live.subscribe(subscription);
}

async function startApp(): Promise<void> {
  operator = await whoami().catch(() => undefined);
  document.body.dataset.scope = operator?.scope ?? 'unknown';
  who.textContent = operator ? `${operator.name} (${operator.scope})` : '';
  who.hidden = operator === undefined;
  logoutButton.hidden = false;
  window.addEventListener('hashchange', route);
  route();
}

function showLogin(note = ''): void {
  live.stop();
  view?.unmount();
  view = undefined;
  window.removeEventListener('hashchange', route);
  logoutButton.hidden = true;
  who.hidden = true;
  operator = undefined;
  const token = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'off', 'aria-label': 'Operator key', 'data-testid': 'login-token' });
  const error = h('p', { class: 'form-note error', role: 'alert', 'data-testid': 'login-error' }, note);
  const button = h('button', { type: 'submit', 'data-testid': 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login panel', 'data-testid': 'login-form' },
    h('h2', {}, 'Operator login'),
    h('p', { class: 'muted' }, 'An operator key (pwk_…, from an admin), or the operator token the hub printed at start (PULSEWIRE_OPERATOR_TOKEN). It is exchanged for a session cookie and not kept by this page; the page shows what the key\'s scope allows.'),
    h('label', {}, 'Operator key ', token), button, error);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = token.value;
    token.value = '';
    button.disabled = true;
    error.textContent = '';
    login(value).then((ok) => {
      if (ok) void startApp();
      else {
        error.textContent = 'The hub refused that key.';
        button.disabled = false;
      }
    }, (err: unknown) => {
      error.textContent = err instanceof Error ? err.message : String(err);
      button.disabled = false;
    });
  });
  app.replaceChildren(form);
  token.focus();
}

logoutButton.addEventListener('click', () => {
  void logout().then(() => showLogin());
});

isLoggedIn().then((ok) => (ok ? startApp() : showLogin()), () => showLogin('The hub is not reachable.'));
