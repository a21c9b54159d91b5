/**
 * The operator API from the page. Credentials are the HttpOnly session
 * cookie that POST /v1/login sets: the page never sees or stores the key
 * after the login form sends it once.
 */

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** Raised for a 401 anywhere: the page shows the login screen again. */
export class LoggedOut extends ApiError {}

let onLoggedOut: () => void = () => {};
export function whenLoggedOut(handler: () => void): void {
  onLoggedOut = handler;
}

export async function api<T>(method: string, route: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const res = await fetch(route, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    const code = error?.code ?? `HTTP_${res.status}`;
    const message = error?.message ?? (typeof parsed === 'string' && parsed ? parsed : res.statusText);
    if (res.status === 401) {
      onLoggedOut();
      throw new LoggedOut(401, code, message);
    }
    throw new ApiError(res.status, code, message);
  }
  return parsed as T;
}

export type Scope = 'read' | 'operate' | 'admin';
/** The key the session was opened with (GET /v1/whoami). */
export type Operator = { id: string; name: string; scope: Scope };

/**
 * Who is logged in; undefined when the hub does not say (an older hub). The
 * page then shows everything and the hub's 403 decides: hiding is a courtesy,
 * the hub is the guard.
 */
export async function whoami(): Promise<Operator | undefined> {
  try {
    return await api<Operator>('GET', '/v1/whoami');
  } catch (err) {
    if (err instanceof LoggedOut) throw err;
    return undefined;
  }
}

/** Whether the key may send commands and change desired state (scope operate or admin). */
export function mayOperate(operator: Operator | undefined): boolean {
  return operator === undefined || operator.scope !== 'read';
}

/** Trades an operator key for the session cookie. False when the hub refuses the key. */
export async function login(token: string): Promise<boolean> {
  const res = await fetch('/v1/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  if (res.status === 401) return false;
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, `login failed: ${res.status} ${res.statusText}`);
  return true;
}

export async function logout(): Promise<void> {
  await fetch('/v1/logout', { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
}

/** Whether the session cookie is (still) good, without triggering the logged-out handler. */
export async function isLoggedIn(): Promise<boolean> {
  const res = await fetch('/v1/devices?limit=1', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  return res.status !== 401;
}
