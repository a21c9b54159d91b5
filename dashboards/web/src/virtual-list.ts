/**
 * A list that keeps only the rows in view (plus a few) in the DOM, however
 * many items it has: a spacer gives the scroll height, a small pool of row
 * elements is moved with transforms and refilled as the list scrolls.
 * Rendering happens at most once per animation frame.
 */
import { renderNextFrame } from './frame.js';

export type VirtualListOptions<T> = {
  rowHeight: number;
  /** Rows rendered beyond each edge of the viewport. */
  overscan?: number;
  createRow: () => HTMLElement;
  renderRow: (row: HTMLElement, item: T, index: number) => void;
};

export class VirtualList<T> {
  readonly element: HTMLDivElement;
  readonly #spacer: HTMLDivElement;
  readonly #opts: Required<VirtualListOptions<T>>;
  #items: readonly T[] = [];
  readonly #pool: HTMLElement[] = [];
  readonly #render = () => this.#renderNow();

  constructor(opts: VirtualListOptions<T>) {
    this.#opts = { overscan: 6, ...opts };
    this.element = document.createElement('div');
    this.element.className = 'vlist';
    this.element.tabIndex = 0;
    this.#spacer = document.createElement('div');
    this.#spacer.className = 'vlist-spacer';
    this.element.append(this.#spacer);
    this.element.addEventListener('scroll', () => renderNextFrame(this.#render), { passive: true });
    new ResizeObserver(() => renderNextFrame(this.#render)).observe(this.element);
  }

  get items(): readonly T[] {
    return this.#items;
  }

  setItems(items: readonly T[]): void {
    this.#items = items;
    this.refresh();
  }

  /** Re-renders the visible rows (their items may have changed) in the next frame. */
  refresh(): void {
    renderNextFrame(this.#render);
  }

  scrollToIndex(index: number): void {
    this.element.scrollTop = index * this.#opts.rowHeight;
    this.refresh();
  }

  #renderNow(): void {
    const { rowHeight, overscan, createRow, renderRow } = this.#opts;
    const total = this.#items.length;
    this.#spacer.style.height = `${total * rowHeight}px`;
    const viewport = this.element.clientHeight || rowHeight * 20;
    const first = Math.max(0, Math.floor(this.element.scrollTop / rowHeight) - overscan);
    const last = Math.min(total, Math.ceil((this.element.scrollTop + viewport) / rowHeight) + overscan);
    const needed = Math.max(0, last - first);
    while (this.#pool.length < needed) {
      const row = createRow();
      row.style.position = 'absolute';
      row.style.left = '0';
      row.style.right = '0';
      row.style.height = `${rowHeight}px`;
      this.#pool.push(row);
      this.#spacer.append(row);
    }
    while (this.#pool.length > needed) this.#pool.pop()!.remove();
    for (let i = 0; i < needed; i++) {
      const row = this.#pool[i]!;
      const index = first + i;
      row.style.transform = `translateY(${index * rowHeight}px)`;
      row.dataset.index = String(index);
      renderRow(row, this.#items[index]!, index);
    }
  }
}
