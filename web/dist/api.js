// Why this file exists: it is the one place that talks to the node. It adds the bearer
// token, turns error answers into an ApiError carrying the API's own message, refreshes
// the token before it runs out, and sends the user back to the sign-in page (with a
// "session expired" message) on any 401 of an authenticated call.

const KEY = 'medchain.session';
const FLASH = 'medchain.flash';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    this.expired = false;
  }
}

/** The signed-in user, kept for this browser tab only. */
export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || 'null');
    } catch {
      return null;
    }
  },
  set(s) {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  },
  clear() {
    sessionStorage.removeItem(KEY);
    clearTimeout(refreshTimer);
  },
};

/** A message for the next sign-in page (survives the route change). */
export function setFlash(kind, text) {
  sessionStorage.setItem(FLASH, JSON.stringify({ kind, text }));
}

export function takeFlash() {
  const f = sessionStorage.getItem(FLASH);
  sessionStorage.removeItem(FLASH);
  try {
    return f ? JSON.parse(f) : null;
  } catch {
    return null;
  }
}

let refreshTimer = 0;

/** Store a login (or refresh) answer and plan the next refresh. */
export function startSession(login) {
  const s = {
    token: login.token,
    refresh_token: login.refresh_token,
    role: login.role,
    user_id: login.user_id,
    display_name: login.display_name,
    department: login.department,
    expires_at: Date.now() + login.expires_in * 1000,
  };
  session.set(s);
  scheduleRefresh();
  return s;
}

/** Refresh the access token a minute before it expires. */
export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const s = session.get();
  if (!s) return;
  const wait = Math.max(0, s.expires_at - Date.now() - 60_000);
  refreshTimer = setTimeout(refreshNow, Math.min(wait, 2 ** 31 - 1));
}

async function refreshNow() {
  const s = session.get();
  if (!s) return;
  try {
    const fresh = await request('POST', '/api/token/refresh', { refresh_token: s.refresh_token }, { auth: false });
    startSession(fresh);
  } catch (e) {
    if (e.status === 401) expire();
  }
}

function expire() {
  session.clear();
  setFlash('error', 'Your session has expired. Please sign in again.');
  if (location.hash !== '#/login') location.hash = '#/login';
  else window.dispatchEvent(new HashChangeEvent('hashchange'));
}

async function errorOf(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) {
      return new ApiError(res.status, body.error.code, body.error.message);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, 'http', `The node answered ${res.status} ${res.statusText}`.trim());
}

/**
 * Call the API. `body` (if any) is sent as JSON. Resolves with the parsed JSON, or the
 * Response itself with `{ raw: true }`.
 */
export async function request(method, path, body, { auth = true, raw = false, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const s = session.get();
  if (auth) {
    if (!s) {
      expire();
      const e = new ApiError(401, 'unauthorized', 'Your session has expired');
      e.expired = true;
      throw e;
    }
    headers.Authorization = `Bearer ${s.token}`;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the MedChain node. Check your connection and try again.');
  }
  if (!res.ok) {
    const e = await errorOf(res);
    if (auth && res.status === 401) {
      e.expired = true;
      expire();
    }
    throw e;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body === undefined ? {} : body, opts);

/** `?a=1&b=x` from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
