/**
 * One live uPlot chart per numeric series: backfilled from the history API,
 * then extended by live readings. Points are kept sorted by time and bounded;
 * the chart redraws at most once per animation frame.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatValue, h, renderNextFrame } from './frame.js';

/** The chart keeps this much time and at most MAX_POINTS points. */
export const WINDOW_MS = 15 * 60_000;
const MAX_POINTS = 5000;
const COLORS = ['#2f7ed8', '#d9534f', '#3c9d4e', '#e69a28', '#8e5ecf', '#1ba3a3'];

export class SeriesChart {
  readonly element: HTMLElement;
  readonly name: string;
  /** The stored field the history API reads: `value` (SenML v) or `sum` (SenML s). */
  readonly kind: 'value' | 'sum';
  #unit: string | undefined;
  readonly #label: string;
  /** Seconds since the epoch (uPlot's time unit) and values, sorted by time. */
  readonly #xs: number[] = [];
  readonly #ys: number[] = [];
  readonly #plotBox: HTMLDivElement;
  readonly #latest: HTMLElement;
  readonly #caption: HTMLElement;
  #plot: uPlot | undefined;
  readonly #draw = () => this.#drawNow();

  /** `name` is the full series name (SenML bn + n); `label` what to show (without the device's own base name). */
  constructor(name: string, kind: 'value' | 'sum', unit: string | undefined, index: number, label = name) {
    this.name = name;
    this.kind = kind;
    this.#label = label;
    this.#unit = unit;
    this.#latest = h('b', { class: 'latest', 'data-testid': 'latest-value' }, '–');
    this.#caption = h('span', { class: 'series-name', title: name }, unit ? `${label} (${unit})` : label);
    this.#plotBox = h('div', { class: 'plot' });
    this.element = h('figure', { class: 'chart', 'data-series': name }, h('figcaption', {}, this.#caption, this.#latest), this.#plotBox);
    this.element.style.setProperty('--series-color', COLORS[index % COLORS.length]!);
  }

  get pointCount(): number {
    return this.#xs.length;
  }

  /**
   * Merges history buckets (`everyMs` wide) in: a bucket goes in where no
   * point is already within half a bucket of it, so history fills what came
   * before the live points and any gap a disconnection left between them.
   */
  backfill(points: { time: string; value: number }[], everyMs = 1000): void {
    const half = everyMs / 2000;
    let added = false;
    for (const point of points) {
      const x = Date.parse(point.time) / 1000 + half;
      if (!Number.isFinite(x) || !Number.isFinite(point.value)) continue;
      const i = lowerBound(this.#xs, x);
      const before = this.#xs[i - 1];
      const after = this.#xs[i];
      if ((before !== undefined && x - before < half) || (after !== undefined && after - x < half)) continue;
      this.#xs.splice(i, 0, x);
      this.#ys.splice(i, 0, point.value);
      added = true;
    }
    if (!added) return;
    this.#trim();
    renderNextFrame(this.#draw);
  }

  add(tMs: number, value: number, unit?: string): void {
    if (unit && !this.#unit) {
      this.#unit = unit;
      this.#caption.textContent = `${this.#label} (${unit})`;
    }
    const x = tMs / 1000;
    let i = this.#xs.length;
    // Readings nearly always arrive in order; insert in place otherwise.
    while (i > 0 && this.#xs[i - 1]! > x) i--;
    if (i > 0 && this.#xs[i - 1] === x) {
      this.#ys[i - 1] = value;
    } else {
      this.#xs.splice(i, 0, x);
      this.#ys.splice(i, 0, value);
    }
    this.#trim();
    renderNextFrame(this.#draw);
  }

  resize(): void {
    if (!this.#plot) return;
    this.#plot.setSize(this.#size());
  }

  destroy(): void {
    this.#plot?.destroy();
    this.#plot = undefined;
  }

  #trim(): void {
    const newest = this.#xs[this.#xs.length - 1];
    if (newest === undefined) return;
    let drop = 0;
    while (drop < this.#xs.length && this.#xs[drop]! < newest - WINDOW_MS / 1000) drop++;
    drop = Math.max(drop, this.#xs.length - MAX_POINTS);
    if (drop > 0) {
      this.#xs.splice(0, drop);
      this.#ys.splice(0, drop);
    }
  }

  #size(): { width: number; height: number } {
    return { width: Math.max(240, this.#plotBox.clientWidth || this.element.clientWidth || 480), height: 160 };
  }

  #drawNow(): void {
    const last = this.#ys[this.#ys.length - 1];
    this.#latest.textContent = last === undefined ? '–' : formatValue(last, this.#unit);
    this.element.dataset.points = String(this.#xs.length);
    const data: uPlot.AlignedData = [this.#xs.slice(), this.#ys.slice()];
    if (!this.#plot) {
      const color = getComputedStyle(this.element).getPropertyValue('--series-color').trim() || COLORS[0]!;
      this.#plot = new uPlot({
        ...this.#size(),
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: true } },
        series: [{}, { label: this.#label, stroke: color, width: 1.5, fill: `${color}22`, points: { show: false } }],
        axes: [{ stroke: '#777', grid: { stroke: '#eee' } }, { stroke: '#777', grid: { stroke: '#eee' }, size: 56 }],
      }, data, this.#plotBox);
    } else {
      this.#plot.setData(data);
    }
  }
}

/** First index whose value is >= x (xs sorted ascending). */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
