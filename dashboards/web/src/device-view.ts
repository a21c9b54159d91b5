/**
 * Device view: live charts of the device's numeric series (backfilled from
 * GET /v1/devices/:id/telemetry), its other series' newest values,
 * reported/desired state with the delta, a form to send a command and watch
 * its status change live, and a form to patch the desired state.
 */
import { renderAlerts } from './alert-list.js';
import { api, ApiError } from './api.js';
import { SeriesChart, WINDOW_MS } from './charts.js';
import { formatValue, h, renderNextFrame, timeAgo } from './frame.js';
import { computeDelta } from './state-delta.js';
import type { FleetChange, FleetStore } from './store.js';
import type { CommandStatus, CommandView, DeviceStateView, DeviceView as DeviceRecordView, HistoryView, JsonObject, SeriesListView, JsonValue, LiveReading, LiveStateChange } from './types.js';

const STATUS_RANK: Record<CommandStatus, number> = {
  queued: 0, sent: 1, received: 2, succeeded: 3, failed: 3, rejected: 3, expired: 3, 'timed-out': 3, cancelled: 3,
};
const FINAL = new Set<CommandStatus>(['succeeded', 'failed', 'rejected', 'expired', 'timed-out', 'cancelled']);
const KNOWN_COMMANDS = ['set_interval', 'set_led', 'reboot'];

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? '';
}

function message(err: unknown): string {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export class DeviceView {
  readonly element: HTMLElement;
  readonly id: string;
  readonly #store: FleetStore;
  readonly #charts = new Map<string, SeriesChart>();
  readonly #texts = new Map<string, LiveReading>();
  readonly #commands = new Map<string, CommandView>();
  #state: { reported: JsonObject; desired: JsonObject; version: number } | undefined;
  #details: DeviceRecordView | undefined;
  #unlisten: (() => void) | undefined;
  #lastSent: string | undefined;
  #statusAt: number | undefined;
  #closed = false;
  readonly #onResize = () => { for (const chart of this.#charts.values()) chart.resize(); };

  readonly #badge = h('span', { class: 'badge', 'data-testid': 'device-status' });
  readonly #reason = h('span', { class: 'reason', 'data-testid': 'device-reason' });
  readonly #detailList = h('dl', { class: 'details' });
  readonly #alerts = h('ol', { class: 'recent alerts', 'data-testid': 'device-alerts' });
  readonly #chartBox = h('div', { class: 'charts', 'data-testid': 'charts' });
  readonly #chartNote = h('p', { class: 'muted' }, 'Waiting for readings…');
  readonly #textTable = h('tbody');
  readonly #reported = h('pre', { 'data-testid': 'reported' });
  readonly #desired = h('pre', { 'data-testid': 'desired' });
  readonly #delta = h('pre', { 'data-testid': 'delta' });
  readonly #version = h('span', { class: 'muted', 'data-testid': 'desired-version' });
  readonly #stateNote = h('p', { class: 'muted' });
  readonly #commandRows = h('tbody', { 'data-testid': 'command-rows' });
  readonly #commandNote = h('p', { class: 'form-note', 'data-testid': 'command-note', role: 'status' });
  readonly #patchNote = h('p', { class: 'form-note', 'data-testid': 'patch-note', role: 'status' });

  /** False for a read-only key: no command form, no cancel, no desired patch (the hub would answer 403). */
  readonly #mayOperate: boolean;

  constructor(id: string, store: FleetStore, options: { mayOperate?: boolean } = {}) {
    this.id = id;
    this.#store = store;
    this.#mayOperate = options.mayOperate ?? true;

    const cmdName = h('input', { name: 'name', list: 'known-commands', required: true, value: 'set_interval', 'aria-label': 'Command name', 'data-testid': 'command-name' });
    const cmdArgs = h('textarea', { name: 'args', rows: '3', spellcheck: 'false', 'aria-label': 'Arguments (JSON)', 'data-testid': 'command-args' });
    cmdArgs.value = '{"seconds": 5}';
    const cmdTimeout = h('input', { name: 'timeoutMs', type: 'number', min: '1', placeholder: 'default', 'aria-label': 'Timeout ms' });
    const commandForm = h('form', { class: 'command-form', 'data-testid': 'command-form' },
      h('label', {}, 'Command ', cmdName),
      h('datalist', { id: 'known-commands' }, ...KNOWN_COMMANDS.map((name) => h('option', { value: name }))),
      h('label', {}, 'Arguments (JSON) ', cmdArgs),
      h('label', {}, 'Timeout (ms) ', cmdTimeout),
      h('button', { type: 'submit', 'data-testid': 'command-send' }, 'Send command'),
      this.#commandNote);
    commandForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#sendCommand(cmdName.value.trim(), cmdArgs.value, cmdTimeout.value);
    });

    const patchText = h('textarea', { name: 'patch', rows: '3', spellcheck: 'false', 'aria-label': 'Desired state patch (JSON Merge Patch)', 'data-testid': 'patch-text' });
    patchText.value = '{"led": true}';
    const patchForm = h('form', { class: 'patch-form', 'data-testid': 'patch-form' },
      h('label', {}, 'Patch desired state (JSON Merge Patch; null removes a key) ', patchText),
      h('button', { type: 'submit', 'data-testid': 'patch-send' }, 'Apply patch'),
      this.#patchNote);
    patchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#patchDesired(patchText.value);
    });

    this.element = h('section', { class: 'device', 'data-testid': 'device-view', 'data-device': id },
      h('div', { class: 'device-head' },
        h('a', { href: '#/', class: 'back' }, '← Fleet'),
        h('h2', {}, id), this.#badge, this.#reason),
      this.#detailList,
      h('div', { class: 'panel alerts-panel' }, h('h3', {}, 'Firing alerts'), this.#alerts),
      h('div', { class: 'panel' }, h('h3', {}, 'Live series'), this.#chartNote, this.#chartBox,
        h('table', { class: 'texts' }, this.#textTable)),
      h('div', { class: 'device-cols' },
        h('div', { class: 'panel state-panel' },
          h('h3', {}, 'State ', this.#version), this.#stateNote,
          h('div', { class: 'state-grid' },
            h('div', {}, h('h4', {}, 'Reported'), this.#reported),
            h('div', {}, h('h4', {}, 'Desired'), this.#desired),
            h('div', {}, h('h4', {}, 'Delta (not yet reported)'), this.#delta)),
          this.#mayOperate ? patchForm : undefined),
        h('div', { class: 'panel command-panel' },
          h('h3', {}, 'Commands'),
          this.#mayOperate ? commandForm : h('p', { class: 'muted', 'data-testid': 'read-only-note' }, 'This key may watch only: sending commands and changing desired state need an operate key.'),
          h('table', { class: 'commands' },
            h('thead', {}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'args'), h('th', {}, 'status'), h('th', {}, 'result'), h('th', {}, 'created'), h('th', {}))),
            this.#commandRows))));
  }

  /** The live subscription this view needs. */
  get subscription() {
    return { devices: [this.id] };
  }

  /** After a reconnection: what happened meanwhile comes from the API (the stream only resumes). */
  resync(): void {
    for (const chart of this.#charts.values()) void this.#backfill(chart);
    void this.#loadSeries();
    void this.#loadDetails();
    void this.#loadState();
    void this.#loadCommands();
  }

  mount(parent: HTMLElement): void {
    parent.replaceChildren(this.element);
    this.#unlisten = this.#store.listen((change) => this.#onChange(change));
    window.addEventListener('resize', this.#onResize);
    this.#fromStore();
    this.#statusAt = this.#store.devices.get(this.id)?.at;
    void this.#loadSeries();
    void this.#loadDetails();
    void this.#loadState();
    void this.#loadCommands();
    renderNextFrame(this.#renderHead);
    renderNextFrame(this.#renderAlerts);
  }

  readonly #renderAlerts = () => renderAlerts(this.#alerts, this.#store.alertsOf(this.id), false);

  unmount(): void {
    this.#closed = true;
    this.#unlisten?.();
    window.removeEventListener('resize', this.#onResize);
    for (const chart of this.#charts.values()) chart.destroy();
  }

  /** Series the store already knows (from the snapshot) get charts at once. */
  #fromStore(): void {
    const series = this.#store.latest.get(this.id);
    if (series) for (const reading of series.values()) this.#reading(reading, false);
  }

  #onChange(change: FleetChange): void {
    for (const reading of change.readings) if (reading.device === this.id) this.#reading(reading, true);
    // Connected-at, last seen and message count come from the registry: re-read them when the status changes.
    if (!change.snapshot && change.status && this.#statusAt !== this.#store.devices.get(this.id)?.at) {
      this.#statusAt = this.#store.devices.get(this.id)?.at;
      void this.#loadDetails();
    }
    for (const command of change.commands) if (command.deviceId === this.id) this.#command(command);
    for (const state of change.state) if (state.device === this.id) this.#stateChange(state);
    // While an alert shows, its "since" ages with every change (readings mostly), as the head's times do.
    if (change.alerts || this.#alerts.firstElementChild?.hasAttribute('data-alert')) renderNextFrame(this.#renderAlerts);
    renderNextFrame(this.#renderHead);
  }

  /**
   * The device's stored series: a device that has not sent since the hub or
   * the page started has no reading in the snapshot or the stream, yet its
   * charts and their history should be there.
   */
  async #loadSeries(): Promise<void> {
    try {
      const list = await api<SeriesListView>('GET', `/v1/devices/${encodeURIComponent(this.id)}/series`);
      if (this.#closed) return;
      for (const s of list.series) {
        this.#reading({ device: this.id, name: s.name, ...(s.unit ? { unit: s.unit } : {}), t: Date.parse(s.time), kind: s.kind, v: s.value }, false);
      }
    } catch (err) {
      console.warn('series list:', message(err));
    }
  }

  #reading(reading: LiveReading, live: boolean): void {
    if ((reading.kind === 'value' || reading.kind === 'sum') && typeof reading.v === 'number') {
      let chart = this.#charts.get(reading.name);
      if (!chart) {
        chart = new SeriesChart(reading.name, reading.kind, reading.unit, this.#charts.size, this.#label(reading.name));
        this.#charts.set(reading.name, chart);
        const ordered = [...this.#charts.keys()].sort();
        const next = ordered[ordered.indexOf(reading.name) + 1];
        this.#chartBox.insertBefore(chart.element, next ? this.#charts.get(next)!.element : null);
        this.#chartNote.hidden = true;
        void this.#backfill(chart);
      }
      if (live || chart.pointCount === 0) chart.add(reading.t, reading.v, reading.unit);
    } else {
      const previous = this.#texts.get(reading.name);
      if (!previous || reading.t >= previous.t) this.#texts.set(reading.name, reading);
      renderNextFrame(this.#renderTexts);
    }
  }

  /** Devices often name series with their own id as SenML base name ("boiler-1/temp"): show "temp". */
  #label(name: string): string {
    return name.startsWith(`${this.id}/`) && name.length > this.id.length + 1 ? name.slice(this.id.length + 1) : name;
  }

  async #backfill(chart: SeriesChart): Promise<void> {
    const to = Date.now();
    const query = new URLSearchParams({ name: chart.name, field: chart.kind, from: String(to - WINDOW_MS), to: String(to + 1000) });
    try {
      const history = await api<HistoryView>('GET', `/v1/devices/${encodeURIComponent(this.id)}/telemetry?${query}`);
      const everyMs = Number(/^(\d+)ms$/.exec(history.every)?.[1] ?? 1000);
      if (!this.#closed) chart.backfill(history.points, everyMs);
    } catch (err) {
      console.warn(`history of ${chart.name}:`, message(err));
    }
  }

  async #loadDetails(): Promise<void> {
    try {
      this.#details = await api<DeviceRecordView>('GET', `/v1/devices/${encodeURIComponent(this.id)}`);
    } catch (err) {
      this.#detailList.replaceChildren(h('dd', { class: 'error' }, message(err)));
      return;
    }
    renderNextFrame(this.#renderHead);
  }

  async #loadState(): Promise<void> {
    try {
      const view = await api<DeviceStateView>('GET', `/v1/devices/${encodeURIComponent(this.id)}/state`);
      this.#state = { reported: view.reported ?? {}, desired: view.desired ?? {}, version: view.version ?? 0 };
      this.#stateNote.textContent = '';
    } catch (err) {
      this.#stateNote.textContent = err instanceof ApiError && err.status === 404 && !this.#state
        ? 'No state for this device (or this hub has no state API).'
        : `Could not read state: ${message(err)}`;
    }
    renderNextFrame(this.#renderState);
  }

  async #loadCommands(): Promise<void> {
    try {
      const body = await api<CommandView[] | { commands?: CommandView[]; items?: CommandView[] }>('GET', `/v1/devices/${encodeURIComponent(this.id)}/commands`);
      const list = Array.isArray(body) ? body : body.commands ?? body.items ?? [];
      for (const command of list) this.#command(command);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) this.#commandNote.textContent = `Could not list commands: ${message(err)}`;
    }
  }

  #stateChange(change: LiveStateChange): void {
    const state = this.#state ?? { reported: {}, desired: {}, version: 0 };
    if (change.kind === 'reported') state.reported = change.state;
    else {
      if (change.version < state.version) return;
      state.desired = change.state;
      state.version = change.version;
    }
    this.#state = state;
    this.#stateNote.textContent = '';
    renderNextFrame(this.#renderState);
  }

  #command(command: CommandView): void {
    const known = this.#commands.get(command.id);
    if (known && STATUS_RANK[command.status] < STATUS_RANK[known.status]) return;
    this.#commands.set(command.id, { ...known, ...command });
    if (command.id === this.#lastSent) this.#commandNote.textContent = `Command ${command.name} ${command.status}`;
    renderNextFrame(this.#renderCommands);
  }

  async #sendCommand(name: string, argsText: string, timeoutText: string): Promise<void> {
    let args: JsonValue = null;
    try {
      args = argsText.trim() === '' ? null : (JSON.parse(argsText) as JsonValue);
    } catch (err) {
      this.#commandNote.textContent = `Arguments are not JSON: ${message(err)}`;
      return;
    }
    const body: Record<string, unknown> = { name, args };
    if (timeoutText) body.timeoutMs = Number(timeoutText);
    this.#commandNote.textContent = 'Sending…';
    let command: CommandView;
    try {
      command = await api<CommandView>('POST', `/v1/devices/${encodeURIComponent(this.id)}/commands`, body);
    } catch (err) {
      this.#commandNote.textContent = `Not sent: ${message(err)}`;
      return;
    }
    this.#lastSent = command.id;
    this.#command(command);
    void this.#followCommand(command.id);
  }

  /**
   * The live stream carries every status change; long-polling the command as
   * well covers a stream that is down or reconnecting at that moment.
   */
  async #followCommand(commandId: string): Promise<void> {
    for (let i = 0; i < 20 && !this.#closed; i++) {
      const known = this.#commands.get(commandId);
      if (known && FINAL.has(known.status)) return;
      try {
        const command = await api<CommandView>('GET', `/v1/devices/${encodeURIComponent(this.id)}/commands/${encodeURIComponent(commandId)}?wait=20`);
        this.#command(command);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  async #patchDesired(text: string): Promise<void> {
    let patch: JsonValue;
    try {
      patch = JSON.parse(text) as JsonValue;
    } catch (err) {
      this.#patchNote.textContent = `Not JSON: ${message(err)}`;
      return;
    }
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      this.#patchNote.textContent = 'A merge patch of the desired state is a JSON object.';
      return;
    }
    const route = `/v1/devices/${encodeURIComponent(this.id)}/desired`;
    try {
      let view: DeviceStateView;
      try {
        view = await api<DeviceStateView>('PATCH', route, patch, 'application/merge-patch+json');
      } catch (err) {
        // A hub that only parses application/json still takes the same document.
        if (!(err instanceof ApiError && err.status === 415)) throw err;
        view = await api<DeviceStateView>('PATCH', route, patch);
      }
      if (view && typeof view === 'object' && 'desired' in view) {
        this.#stateChange({ device: this.id, kind: 'desired', state: view.desired, version: view.version, at: Date.now() });
        if (view.reported) this.#stateChange({ device: this.id, kind: 'reported', state: view.reported, at: Date.now() });
      }
      this.#patchNote.textContent = `Desired state updated${view && 'version' in view ? ` (version ${view.version})` : ''}`;
    } catch (err) {
      this.#patchNote.textContent = `Not applied: ${message(err)}`;
    }
  }

  readonly #renderHead = () => {
    const entry = this.#store.devices.get(this.id);
    const online = entry?.online ?? this.#details?.online ?? false;
    this.#badge.className = `badge ${online ? 'on' : 'off'}`;
    this.#badge.textContent = online ? 'online' : 'offline';
    this.element.dataset.online = String(online);
    const reason = entry?.reason ?? this.#details?.offlineReason ?? '';
    this.#reason.textContent = online ? '' : reason ? `offline: ${reason}${entry ? ` · ${timeAgo(entry.at)}` : ''}` : '';
    const d = this.#details;
    if (d) {
      const rows: [string, string][] = [
        ['provisioning', d.provisioning],
        ['connected', d.connectedAt ? new Date(d.connectedAt).toLocaleString() : '–'],
        ['last seen', d.lastSeen ? new Date(d.lastSeen).toLocaleString() : '–'],
        ['address', d.remoteAddress ?? '–'],
        ['messages in', String(d.messagesIn)],
      ];
      this.#detailList.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    }
  };

  readonly #renderTexts = () => {
    const rows = [...this.#texts.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.#textTable.replaceChildren(...rows.map((r) =>
      h('tr', { 'data-series': r.name }, h('th', { title: r.name }, this.#label(r.name)), h('td', {}, formatValue(r.v, r.unit)), h('td', { class: 'muted' }, timeAgo(r.t)))));
  };

  readonly #renderState = () => {
    const state = this.#state;
    if (!state) return;
    this.#reported.textContent = pretty(state.reported);
    this.#desired.textContent = pretty(state.desired);
    const delta = computeDelta(state.desired, state.reported);
    this.#delta.textContent = pretty(delta);
    this.#delta.classList.toggle('pending', Object.keys(delta).length > 0);
    this.#version.textContent = `desired version ${state.version}`;
  };

  readonly #renderCommands = () => {
    const commands = [...this.#commands.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, 50);
    this.#commandRows.replaceChildren(...commands.map((c) =>
      h('tr', { 'data-command': c.id, 'data-status': c.status },
        h('td', {}, c.name),
        h('td', { class: 'mono' }, JSON.stringify(c.args) ?? ''),
        h('td', {}, h('span', { class: `cmd-status s-${c.status}`, 'data-testid': 'command-status' }, c.status)),
        h('td', { class: 'mono' }, c.result === undefined ? '' : JSON.stringify(c.result)),
        h('td', { class: 'muted' }, new Date(c.createdAt).toLocaleTimeString()),
        h('td', {}, FINAL.has(c.status) || !this.#mayOperate ? undefined : this.#cancelButton(c)))));
  };

  #cancelButton(command: CommandView): HTMLButtonElement {
    const button = h('button', { type: 'button', class: 'link', 'data-testid': 'command-cancel' }, 'cancel');
    button.addEventListener('click', () => {
      button.disabled = true;
      api<CommandView | undefined>('DELETE', `/v1/devices/${encodeURIComponent(this.id)}/commands/${encodeURIComponent(command.id)}`).then((view) => {
        if (view && typeof view === 'object' && 'status' in view) this.#command(view);
      }, (err: unknown) => {
        this.#commandNote.textContent = `Not cancelled: ${message(err)}`;
        button.disabled = false;
      });
    });
    return button;
  }
}
