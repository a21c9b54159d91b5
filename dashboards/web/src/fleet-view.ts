/**
 * Fleet view: online/offline counts, a searchable device list with live
 * status badges (virtual scrolling: only visible rows are in the DOM), and the
 * devices that went offline most recently with their reason, and the alerts
 * firing now.
 */
import { renderAlerts } from './alert-list.js';
import { formatValue, h, renderNextFrame, timeAgo } from './frame.js';
import type { DeviceEntry, FleetChange, FleetStore } from './store.js';
import { VirtualList } from './virtual-list.js';

export const ROW_HEIGHT = 32;
const RECENT_OFFLINE = 12;

type StatusFilter = 'all' | 'online' | 'offline';

export class FleetView {
  readonly element: HTMLElement;
  readonly #store: FleetStore;
  readonly #list: VirtualList<string>;
  readonly #online = h('b', { 'data-testid': 'online-count' }, '0');
  readonly #offline = h('b', { 'data-testid': 'offline-count' }, '0');
  readonly #total = h('b', { 'data-testid': 'total-count' }, '0');
  readonly #shown = h('span', { class: 'muted', 'data-testid': 'shown-count' });
  readonly #search = h('input', { type: 'search', placeholder: 'Search devices by id…', 'aria-label': 'Search devices', 'data-testid': 'device-search', autocomplete: 'off' });
  readonly #statusFilter = h('select', { 'aria-label': 'Status', 'data-testid': 'status-filter' },
    h('option', { value: 'all' }, 'all'), h('option', { value: 'online' }, 'online'), h('option', { value: 'offline' }, 'offline'));
  readonly #recent = h('ol', { class: 'recent', 'data-testid': 'recent-offline' });
  readonly #alertCount = h('b', { 'data-testid': 'alert-count' }, '0');
  readonly #alerts = h('ol', { class: 'recent alerts', 'data-testid': 'firing-alerts' });
  #alertsDirty = true;
  #unlisten: (() => void) | undefined;
  #filterDirty = true;
  #clock: ReturnType<typeof setInterval> | undefined;

  constructor(store: FleetStore) {
    this.#store = store;
    this.#list = new VirtualList<string>({
      rowHeight: ROW_HEIGHT,
      createRow: () => {
        const row = h('a', { class: 'row' },
          h('span', { class: 'badge' }), h('span', { class: 'id' }), h('span', { class: 'value' }), h('span', { class: 'since' }));
        return row;
      },
      renderRow: (row, id) => this.#renderRow(row as HTMLAnchorElement, id),
    });
    this.#list.element.dataset.testid = 'device-list';
    this.#search.addEventListener('input', () => this.#refilter());
    this.#statusFilter.addEventListener('change', () => this.#refilter());
    this.element = h('section', { class: 'fleet', 'data-testid': 'fleet-view' },
      h('div', { class: 'counts' },
        h('div', { class: 'count online' }, this.#online, ' online'),
        h('div', { class: 'count offline' }, this.#offline, ' offline'),
        h('div', { class: 'count total' }, this.#total, ' devices'),
        h('div', { class: 'count alerting' }, this.#alertCount, ' alerts firing')),
      h('div', { class: 'fleet-cols' },
        h('div', { class: 'panel list-panel' },
          h('div', { class: 'list-tools' }, this.#search, this.#statusFilter, this.#shown),
          h('div', { class: 'row head' }, h('span', { class: 'badge' }, 'status'), h('span', { class: 'id' }, 'device'),
            h('span', { class: 'value' }, 'latest reading'), h('span', { class: 'since' }, 'since')),
          this.#list.element),
        h('div', { class: 'side-panels' },
          h('div', { class: 'panel alerts-panel' }, h('h3', {}, 'Firing alerts'), this.#alerts),
          h('div', { class: 'panel recent-panel' }, h('h3', {}, 'Recently offline'), this.#recent))));
  }

  mount(parent: HTMLElement): void {
    parent.replaceChildren(this.element);
    this.#unlisten = this.#store.listen((change) => this.#onChange(change));
    this.#filterDirty = true;
    this.#alertsDirty = true;
    renderNextFrame(this.#render);
    // "since" columns (the device list's and the alerts') age without events.
    this.#clock = setInterval(() => { this.#list.refresh(); this.#alertsDirty = true; renderNextFrame(this.#render); }, 5000);
  }

  unmount(): void {
    this.#unlisten?.();
    clearInterval(this.#clock);
  }

  #onChange(change: FleetChange): void {
    if (change.membership) this.#filterDirty = true;
    // A status flip changes membership of the online/offline filter.
    if (change.status && this.#statusFilter.value !== 'all') this.#filterDirty = true;
    if (change.alerts) this.#alertsDirty = true;
    if (change.membership || change.status || change.alerts) renderNextFrame(this.#render);
  }

  #refilter(): void {
    this.#filterDirty = true;
    renderNextFrame(this.#render);
  }

  readonly #render = () => {
    const store = this.#store;
    this.#online.textContent = String(store.onlineCount);
    this.#offline.textContent = String(store.offlineCount);
    this.#total.textContent = String(store.devices.size);
    if (this.#filterDirty) {
      this.#filterDirty = false;
      const needle = this.#search.value.trim().toLowerCase();
      const status = this.#statusFilter.value as StatusFilter;
      const ids = store.sortedIds;
      const shown = needle === '' && status === 'all' ? ids : ids.filter((id) => {
        if (needle && !id.toLowerCase().includes(needle)) return false;
        if (status === 'all') return true;
        return store.devices.get(id)?.online === (status === 'online');
      });
      this.#list.setItems(shown);
      this.#shown.textContent = `${shown.length} shown`;
    } else {
      this.#list.refresh();
    }
    this.#renderRecent(store.recentlyOffline(RECENT_OFFLINE));
    if (this.#alertsDirty) {
      this.#alertsDirty = false;
      this.#alertCount.textContent = String(store.alerts.size);
      renderAlerts(this.#alerts, [...store.alerts.values()], true);
    }
  };

  #renderRow(row: HTMLAnchorElement, id: string): void {
    const entry = this.#store.devices.get(id);
    const [badge, idCell, value, since] = row.children as unknown as HTMLElement[];
    row.href = `#/device/${encodeURIComponent(id)}`;
    row.dataset.device = id;
    const online = entry?.online ?? false;
    row.dataset.online = String(online);
    badge!.className = `badge ${online ? 'on' : 'off'}`;
    badge!.textContent = online ? 'online' : 'offline';
    idCell!.textContent = id;
    const last = entry?.last;
    value!.textContent = last ? `${last.name} ${formatValue(last.v, last.unit)}` : '';
    since!.textContent = entry ? `${online ? '' : `${entry.reason} · `}${timeAgo(entry.at)}` : '';
  }

  #renderRecent(entries: DeviceEntry[]): void {
    if (entries.length === 0) {
      this.#recent.replaceChildren(h('li', { class: 'muted' }, 'none'));
      return;
    }
    this.#recent.replaceChildren(...entries.map((entry) =>
      h('li', { 'data-device': entry.id },
        h('a', { href: `#/device/${encodeURIComponent(entry.id)}` }, entry.id),
        h('span', { class: 'reason', 'data-testid': 'offline-reason' }, entry.reason),
        h('span', { class: 'muted' }, timeAgo(entry.at)))));
  }
}
