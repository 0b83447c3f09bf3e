// @ts-check
// Why this file exists: it is the one place that talks to the node. It adds the bearer
// token, turns error answers into an ApiError carrying the API's own code, message and
// offending field, refreshes the token before it runs out, and sends the user back to the
// sign-in page (with a "session expired" message) on any 401 of an authenticated call.
// The typedefs below are the shapes of the API's answers, so the screens are checked
// against what the node really sends.

const KEY = 'medchain.session';
const FLASH = 'medchain.flash';

// ---- the API's answers ------------------------------------------------------------

/** @typedef {'doctor' | 'patient' | 'pharmacy' | 'department'} Role */

/**
 * The error body of every refusal. `field` names the request field at fault (such as
 * "diagnosis", or "medications[0].name") on validation errors (400, 413, 422).
 * @typedef {{ error: { code: string, message: string, field?: string } }} ErrorBody
 */

/**
 * POST /api/login and /api/token/refresh.
 * @typedef {object} LoginResponse
 * @property {string} token
 * @property {string} refresh_token
 * @property {Role} role
 * @property {string} user_id
 * @property {string} display_name
 * @property {string} department
 * @property {number} expires_in seconds
 * @property {boolean} password_change_required the password was set by an administrator:
 *   `token` opens only POST /api/password (every other call answers 403
 *   `password_change_required`)
 * @property {boolean} mfa_setup_required the organisation requires two-step sign-in for
 *   this role and it is not set up: `token` opens only the enrolment (/api/mfa/totp/...)
 */

/**
 * GET /api/me.
 * @typedef {object} Me
 * @property {string} user_id
 * @property {Role} role
 * @property {string} display_name
 * @property {string} department
 * @property {number} organisation
 * @property {string} organisation_name
 * @property {number} token_expires_at
 */

/**
 * What this tab keeps of a login.
 * @typedef {object} Session
 * @property {string} token
 * @property {string} refresh_token
 * @property {Role} role
 * @property {string} user_id
 * @property {string} display_name
 * @property {string} department
 * @property {number} expires_at milliseconds since the epoch
 */

/**
 * A committed ledger transaction's answer (consents, users, ...).
 * @typedef {{ ok: boolean, block_height: number }} Done
 */

/**
 * One structured medication line.
 * @typedef {object} Medication
 * @property {string} name
 * @property {string} dose
 * @property {string} route
 * @property {string} frequency
 * @property {string} duration
 * @property {string} quantity
 */

/**
 * GET /api/patients: a patient the doctor may look up.
 * @typedef {object} PatientSummary
 * @property {string} user_id
 * @property {string} display_name
 * @property {string} department
 * @property {boolean} consent
 * @property {boolean} break_glass
 */

/**
 * GET /api/patients/{id}/access.
 * @typedef {{ patient_id: string, consent: boolean, break_glass_until_ms: number | null }} AccessStatus
 */

/**
 * A record as POST /api/get_chain returns it.
 * @typedef {object} ChainRecord
 * @property {string} record_id
 * @property {number} block_height
 * @property {string} block_hash
 * @property {string} doctor_id
 * @property {string} department
 * @property {string} diagnosis
 * @property {string} prescription
 * @property {string} notes
 * @property {Medication[]} medications
 * @property {string | null} amends the record this one corrects
 * @property {string} created_at RFC 3339
 * @property {number} created_at_ms
 * @property {boolean} dispensed
 */

/**
 * One page of POST /api/get_chain; `next_cursor` asks for the next page (null: the last).
 * @typedef {{ patient_id: string, access: string, records: ChainRecord[], next_cursor: string | null }} GetChainResponse
 */

/**
 * A whole chain as `getWholeChain` reads it; `more` says it stopped at its page bound.
 * @typedef {GetChainResponse & { more: boolean }} WholeChain
 */

/**
 * POST /api/add_record when the record is committed (200).
 * @typedef {{ record_id: string, block_height: number, block_hash: string, prescription_code: string | null }} AddRecordResponse
 */

/**
 * POST /api/add_record when the record waits for the next block (202).
 * @typedef {{ record_id: string, status: string, prescription_code: string | null }} PendingResponse
 */

/**
 * POST /api/validate_block.
 * @typedef {object} ValidatedBlock
 * @property {number} block_height
 * @property {string} block_hash
 * @property {string} previous_hash
 * @property {number} record_count
 * @property {number} committed_pending
 * @property {number} proposer
 * @property {number[]} signers
 * @property {number} view
 * @property {number} timestamp_ms
 * @property {number} latency_ms
 */

/** @typedef {{ patient_id: string, until_ms: number, block_height: number }} BreakGlassResponse */

/**
 * GET /api/consents.
 * @typedef {object} ConsentView
 * @property {string} grantee_kind
 * @property {string} grantee_id
 * @property {number} granted_at_ms
 * @property {number | null} expires_at_ms
 * @property {number | null} revoked_at_ms
 * @property {number} block_height
 * @property {boolean} active
 */

/** @typedef {{ code: string, expires_at_ms: number }} ConsentCode */

/**
 * GET /api/audit: one read of a patient's data.
 * @typedef {object} AuditView
 * @property {number} id
 * @property {string} patient_id
 * @property {string} reader_id
 * @property {string} reader_role
 * @property {string} action
 * @property {string} reason
 * @property {number} at_ms
 * @property {number} block_height
 */

/**
 * GET /api/break_glass.
 * @typedef {object} BreakGlassView
 * @property {number} id
 * @property {string} doctor_id
 * @property {string} patient_id
 * @property {string} department
 * @property {string} reason
 * @property {number} at_ms
 * @property {number} until_ms
 * @property {number} block_height
 * @property {string | null} reviewed_by the patient's department's reviewer, once reviewed
 * @property {string | null} review_note
 * @property {number | null} reviewed_at_ms
 */

/** @typedef {{ pharmacy_id: string, at_ms: number, block_height: number }} DispenseView */

/**
 * A prescription as the pharmacy sees it (no diagnosis).
 * @typedef {object} PrescriptionView
 * @property {string} record_id
 * @property {string} patient_id
 * @property {string} doctor_id
 * @property {string} prescription
 * @property {Medication[]} medications
 * @property {number} created_at_ms
 * @property {number} block_height
 * @property {DispenseView | null} dispensed
 */

/** @typedef {{ prescriptions: PrescriptionView[] }} PrescriptionList */
/** @typedef {{ record_id: string, block_height: number, block_hash: string }} DispenseResponse */

/**
 * GET /api/users.
 * @typedef {object} UserView
 * @property {string} user_id
 * @property {Role} role
 * @property {number} organisation
 * @property {string} department
 * @property {string} display_name
 * @property {boolean} active
 */

/**
 * GET /api/department/activity: records' metadata, no clinical content.
 * @typedef {object} ActivityView
 * @property {string} record_id
 * @property {string} patient_id
 * @property {string} doctor_id
 * @property {number} created_at_ms
 * @property {number} block_height
 * @property {boolean} has_prescription
 * @property {boolean} dispensed
 */

/** @typedef {{ department: string, records: ActivityView[] }} Activity */

/** @typedef {{ height: number, hash: string, view: number }} ChainHead */

/**
 * GET /api/blocks and /api/blocks/{height}.
 * @typedef {object} BlockSummary
 * @property {number} height
 * @property {string} hash
 * @property {string} previous_hash
 * @property {string} merkle_root
 * @property {number} view
 * @property {number} proposer
 * @property {number} timestamp_ms
 * @property {number} transactions
 * @property {number} records
 * @property {number[]} signers
 */

/** @typedef {{ from: number, verified_to: number, head: number, ok: boolean, error: string | null }} VerifyResult */

/**
 * One second of a replica's time series (null: nothing to measure that second).
 * @typedef {object} MetricsPoint
 * @property {number} t_ms since the replica started
 * @property {number} committed_records_per_s
 * @property {number | null} p50_ms
 * @property {number | null} p99_ms
 * @property {number | null} success_rate
 * @property {number} energy_joules
 * @property {number | null} records_per_joule
 * @property {number} cpu_percent
 * @property {number} view_changes
 */

/** @typedef {{ replica: number, up: boolean, height: number | null, view: number | null, last_seen_ms_ago: number | null }} PeerStatus */

/**
 * GET /api/metrics (the screen uses only some of the figures).
 * @typedef {object} MetricsSnapshot
 * @property {number} replica
 * @property {MetricsPoint[]} series
 * @property {PeerStatus[]} peers
 */

// ---- errors -----------------------------------------------------------------------

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status (0: the node could not be reached)
   * @param {string} code the API's stable code ("invalid", "conflict", ...)
   * @param {string} message safe to show the user
   * @param {string} [field] the request field at fault, when the API names one
   */
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    /** Set on a 401 of an authenticated call: the page is going back to sign-in. */
    this.expired = false;
  }
}

/** @param {Response} res */
async function errorOf(res) {
  try {
    /** @type {Partial<ErrorBody> | null} */
    const body = await res.json();
    const err = body && body.error;
    if (err && err.message) {
      return new ApiError(res.status, err.code, err.message, typeof err.field === 'string' && err.field ? err.field : undefined);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, 'http', `The node answered ${res.status} ${res.statusText}`.trim());
}

// ---- the session ------------------------------------------------------------------

/** The signed-in user, kept for this browser tab only. */
export const session = {
  /** @returns {Session | null} */
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || 'null');
    } catch {
      return null;
    }
  },
  /** @param {Session} s */
  set(s) {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  },
  clear() {
    sessionStorage.removeItem(KEY);
    clearTimeout(refreshTimer);
  },
};

/** @typedef {{ kind: import('./ui.js').NoticeKind, text: string }} Flash */

/**
 * A message for the next sign-in page (survives the route change).
 * @param {Flash['kind']} kind
 * @param {string} text
 */
export function setFlash(kind, text) {
  sessionStorage.setItem(FLASH, JSON.stringify({ kind, text }));
}

/** @returns {Flash | null} */
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

/**
 * Store a login (or refresh) answer and plan the next refresh.
 * @param {LoginResponse} login
 * @returns {Session}
 */
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
    /** @type {LoginResponse} */
    const fresh = await request('POST', '/api/token/refresh', { refresh_token: s.refresh_token }, { auth: false });
    startSession(fresh);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) expire();
  }
}

function expire() {
  session.clear();
  setFlash('error', 'Your session has expired. Please sign in again.');
  if (location.hash !== '#/login') location.hash = '#/login';
  else window.dispatchEvent(new HashChangeEvent('hashchange'));
}

// ---- requests ---------------------------------------------------------------------

/**
 * @typedef {object} RequestOptions
 * @property {boolean} [auth] send the bearer token (default true)
 * @property {boolean} [raw] resolve with the Response itself, not its JSON
 * @property {string} [accept] the Accept header (default application/json)
 * @property {string} [token] the bearer token to send instead of the session's: the
 *   sign-in screen's token that only allows choosing a new password. A 401 is then the
 *   caller's to show, not a return to sign-in.
 */

/**
 * Call the API. `body` (if any) is sent as JSON. Resolves with the parsed JSON, or the
 * Response itself with `{ raw: true }`; rejects with an ApiError. The caller names the
 * answer's shape, a typedef above (`/** @type {Me} *\/ const me = await get(...)`): the
 * answer's type is inferred from there, and is `unknown` (unusable) where it is not named.
 * @template [T=unknown]
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {RequestOptions} [options]
 * @returns {Promise<T>}
 */
export function request(method, path, body, options) {
  // The one place where the node's JSON is taken to be of the shape its endpoint documents.
  return /** @type {Promise<T>} */ (send(method, path, body, options));
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} body
 * @param {RequestOptions} [options]
 * @returns {Promise<unknown>}
 */
async function send(method, path, body, { auth = true, raw = false, accept = 'application/json', token } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: accept };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const s = session.get();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  } else if (auth) {
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
    if (auth && !token && res.status === 401) {
      e.expired = true;
      expire();
    }
    throw e;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

/**
 * GET an answer (see request for its type).
 * @template [T=unknown]
 * @param {string} path
 * @param {RequestOptions} [options]
 * @returns {Promise<T>}
 */
export function get(path, options) {
  return request('GET', path, undefined, options);
}

/**
 * POST `body` (`{}` when left out) and get the answer (see request for its type).
 * @template [T=unknown]
 * @param {string} path
 * @param {unknown} [body]
 * @param {RequestOptions} [options]
 * @returns {Promise<T>}
 */
export function post(path, body, options) {
  return request('POST', path, body === undefined ? {} : body, options);
}

/** Most pages of a chart the UI reads in one go (200 records a page). */
export const CHAIN_PAGES_MAX = 25;

/**
 * A patient's records, page after page (POST /api/get_chain with `cursor`), so that no
 * record past the first page is silently left out. Each page is one audited read. Stops
 * after CHAIN_PAGES_MAX pages and says so (`more`).
 * @param {string} patientId
 * @returns {Promise<WholeChain>}
 */
export async function getWholeChain(patientId) {
  /** @type {ChainRecord[]} */
  const records = [];
  /** @type {string | null} */
  let cursor = null;
  /** @type {GetChainResponse | null} */
  let last = null;
  for (let i = 0; i < CHAIN_PAGES_MAX; i++) {
    /** @type {GetChainResponse} */
    const page = await post('/api/get_chain', cursor ? { patient_id: patientId, cursor } : { patient_id: patientId });
    records.push(...page.records);
    last = page;
    cursor = page.next_cursor;
    if (!cursor) return { ...page, records, more: false };
  }
  return { .../** @type {GetChainResponse} */ (last), records, more: true };
}

/**
 * `?a=1&b=x` from an object, skipping empty values.
 * @param {Record<string, string | number | null | undefined>} params
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
