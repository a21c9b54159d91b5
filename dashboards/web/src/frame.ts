/**
 * One DOM update per animation frame: frames from the hub only change data
 * and mark views dirty; each dirty view renders once in the next frame, however
 * many events arrived in between.
 */
const pending = new Set<() => void>();
let scheduled = false;

export function renderNextFrame(render: () => void): void {
  pending.add(render);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(flush);
}

function flush(): void {
  scheduled = false;
  const jobs = [...pending];
  pending.clear();
  for (const job of jobs) {
    try {
      job();
    } catch (err) {
      console.error('render failed', err);
    }
  }
}

/** Small DOM helper: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: (Node | string | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key === 'class') el.className = String(value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) if (child !== undefined) el.append(child);
  return el;
}

export function timeAgo(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ago`;
  return `${Math.floor(hr / 24)}d ago`;
}

export function formatValue(v: number | string | boolean, unit?: string): string {
  const text = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 2)) : String(v);
  return unit ? `${text} ${unit}` : text;
}
