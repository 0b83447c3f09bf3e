// @ts-check
// Why this file exists: the patient's own view. Their records as a timeline, who may see
// them (grant and revoke consent), a one-time code for a doctor, who has read their data
// (the ledger's audit trail, break-glass included, with the department's review of each
// emergency access), and a download of everything (FHIR).

import { ApiError, get, getWholeChain, post, request } from './api.js';
import {
  h, put, card, actionCard, badge, button, busy, field, notice, loading, loadInto, empty, table,
  pageTitle, fmtTime, fmtDate, ROLE_LABEL, ACTION_LABEL, markField, showErrors, onSubmit,
} from './ui.js';
import { RULE_LABEL, fetchAlerts } from './alerts.js';
import { timeline } from './records.js';

/** @typedef {import('./api.js').ConsentView} ConsentView */
/** @typedef {import('./api.js').Done} Done */

/** @type {Record<string, string>} */
const KIND_LABEL = { doctor: 'Doctor', department: 'Department', pharmacy: 'Pharmacy' };

/** @param {{ grantee_kind: string, grantee_id: string }} c */
const granteeName = (c) => `${KIND_LABEL[c.grantee_kind] || c.grantee_kind} ${c.grantee_id}`;

/**
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
export function render(main, { session }) {
  const me = session.user_id;
  const records = timelineCard(me);
  const audit = auditCard(me);
  const consents = consentsCard();
  const breakGlass = breakGlassCard();

  main.append(
    pageTitle('My health record', `${session.display_name || me} · Patient ID ${me}`),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6 lg:col-span-2' }, records.el, audit.el, breakGlass.el),
      h('div', { class: 'space-y-6' }, consents.el, oneTimeCodeCard(), downloadCard(me), erasureCard())));

  // The audit trail is read after the records, so that it can include this very read.
  records.load().then(audit.load);
  consents.load();
  breakGlass.load();
}

/** @param {string} me */
function timelineCard(me) {
  const box = h('div', { id: 'my-records' }, loading('Loading your records…'));
  return {
    el: card('Timeline', box),
    load: () => loadInto(box,
      (/** @type {import('./api.js').WholeChain} */ chain) => [
        timeline(chain.records, { emptyText: 'You have no records yet.' }),
        chain.more ? h('p', { class: 'mt-4 text-sm text-slate-600' },
          `Showing your first ${chain.records.length} records; download your full record (FHIR export) for the rest.`) : null,
      ],
      () => getWholeChain(me)),
  };
}

// ---- consents ---------------------------------------------------------------------

/** Who can see the records: the list (with revoke) and the form that gives access. */
function consentsCard() {
  const box = h('div', { id: 'consents', 'aria-live': 'polite' }, loading());
  const msg = notice();
  const load = () => loadInto(box, (/** @type {ConsentView[]} */ list) => consentList(list, revoke), () => get('/api/consents'));

  /**
   * @param {HTMLButtonElement} btn
   * @param {ConsentView} c
   */
  async function revoke(btn, c) {
    msg.clear();
    try {
      /** @type {Done} */
      const r = await busy(btn, () => post('/api/consents/revoke', { grantee_kind: c.grantee_kind, grantee_id: c.grantee_id }), 'Revoking…');
      msg.show('success', `Access for ${KIND_LABEL[c.grantee_kind]} ${c.grantee_id} revoked (block #${r.block_height}).`);
      await load();
    } catch (e) {
      msg.error(e);
    }
  }
  return { el: card('Who can see my records', msg.el, box, grantForm(msg, load)), load };
}

/**
 * Active consents, each with its revoke button, and the past ones folded away.
 * @param {ConsentView[]} list
 * @param {(btn: HTMLButtonElement, c: ConsentView) => void} revoke
 */
function consentList(list, revoke) {
  const active = list.filter((c) => c.active);
  const past = list.filter((c) => !c.active);
  /** @param {ConsentView} c */
  const revokeButton = (c) => {
    const btn = button('Revoke', { variant: 'secondary', small: true, ariaLabel: `Revoke access for ${granteeName(c)}`, onClick: () => revoke(btn, c) });
    return btn;
  };
  /** @param {ConsentView} c */
  const row = (c) => h('li', { class: 'flex items-center justify-between gap-3 py-2', 'data-grantee': `${c.grantee_kind}:${c.grantee_id}` },
    h('div', {},
      h('p', { class: 'font-medium text-slate-900' }, granteeName(c)),
      h('p', { class: 'text-sm text-slate-600' },
        c.active
          ? `${c.granted_at_ms ? `Since ${fmtDate(c.granted_at_ms)}` : 'Standing consent'}${c.expires_at_ms ? ` · until ${fmtDate(c.expires_at_ms)}` : ' · no end date'}`
          : c.revoked_at_ms ? `Revoked ${fmtDate(c.revoked_at_ms)}` : `Expired ${fmtDate(c.expires_at_ms)}`)),
    c.active ? revokeButton(c) : badge(c.revoked_at_ms ? 'Revoked' : 'Expired', 'slate'));
  return h('div', {},
    active.length
      ? h('ul', { class: 'divide-y divide-slate-100', 'aria-label': 'Who can see your records' }, active.map(row))
      : empty('Nobody has access to your records at the moment.'),
    past.length
      ? h('details', { class: 'mt-3 text-sm' },
        h('summary', { class: 'cursor-pointer text-slate-700' }, `Past access (${past.length})`),
        h('ul', { class: 'divide-y divide-slate-100', 'aria-label': 'Past access' }, past.map(row)))
      : null);
}

/**
 * Give a doctor, department or pharmacy access, optionally until a date.
 * @param {import('./ui.js').Notice} msg the consents card's message area
 * @param {() => Promise<void>} onGranted
 */
function grantForm(msg, onGranted) {
  const kind = field({ label: 'Who', id: 'consent-kind', type: 'select', options: [['doctor', 'A doctor'], ['department', 'A department'], ['pharmacy', 'A pharmacy']] });
  const grantee = field({ label: 'Their ID', id: 'consent-grantee', required: true, autocomplete: 'off', maxlength: 64, hint: 'For example d002 (doctor), cardiology (department) or ph001 (pharmacy).' });
  const expires = field({ label: 'Until (optional)', id: 'consent-expires', type: 'date', hint: 'Leave empty for no end date; you can revoke at any time.' });
  const grantBtn = button('Grant access', { type: 'submit', id: 'consent-submit' });
  const form = h('form', { class: 'mt-5 space-y-4 border-t border-slate-200 pt-5', novalidate: true },
    h('h3', { class: 'font-semibold text-slate-900' }, 'Give access'),
    kind.el, grantee.el, expires.el, grantBtn);
  onSubmit(form, async () => {
    msg.clear();
    for (const f of [kind, grantee, expires]) f.setError('');
    const id = grantee.input.value.trim();
    if (showErrors(id ? [] : [[grantee, 'Enter the ID of who you give access to.']])) return;
    /** @type {{ grantee_kind: string, grantee_id: string, expires_at_ms?: number }} */
    const body = { grantee_kind: kind.input.value, grantee_id: id };
    if (expires.input.value) {
      const end = new Date(`${expires.input.value}T23:59:59`).getTime();
      if (showErrors(end > Date.now() ? [] : [[expires, 'Choose a date in the future.']])) return;
      body.expires_at_ms = end;
    }
    try {
      /** @type {Done} */
      const r = await busy(grantBtn, () => post('/api/consents', body), 'Granting…');
      msg.show('success', `${KIND_LABEL[body.grantee_kind]} ${id} can now see your records (block #${r.block_height}).`);
      form.reset();
      await onGranted();
    } catch (e) {
      msg.error(e);
      // Without a field named, a 404 can only be the grantee: nobody has that ID.
      if (!markField(e, { grantee_kind: kind, grantee_id: grantee, expires_at_ms: expires })
        && e instanceof ApiError && e.code === 'not_found') grantee.setError(e.message);
    }
  });
  return form;
}

// ---- one-time code and download ---------------------------------------------------

function oneTimeCodeCard() {
  const codeBtn = button('Generate one-time code', { id: 'code-generate' });
  const codeOut = h('div', { 'aria-live': 'polite' });
  const codeMsg = notice();
  codeBtn.addEventListener('click', async () => {
    codeMsg.clear();
    try {
      /** @type {import('./api.js').ConsentCode} */
      const c = await busy(codeBtn, () => post('/api/consent_codes'), 'Generating…');
      put(codeOut, h('div', { class: 'mt-4 rounded-md border-2 border-teal-600 bg-teal-50 p-4 text-center' },
        h('p', { class: 'text-sm text-slate-700' }, 'Your one-time code'),
        h('p', { id: 'consent-code', class: 'my-1 font-mono text-2xl font-semibold tracking-wider text-slate-900' }, c.code),
        h('p', { class: 'text-sm text-slate-700' }, `Valid until ${fmtTime(c.expires_at_ms)}. It lets one doctor add one record.`)));
    } catch (e) {
      codeMsg.error(e);
    }
  });
  return actionCard('One-time code',
    'Seeing a doctor who has no access? A one-time code lets them add a single record without seeing your history.',
    codeBtn, codeMsg.el, codeOut);
}

/** Asking for one's data to be erased: the department approves, then it is gone for good. */
function erasureCard() {
  const msg = notice();
  const reason = field({ label: 'Why do you ask?', id: 'erasure-reason', type: 'textarea', rows: 2, required: true, maxlength: 500,
    hint: 'Your department reads this when it approves. It is encrypted and erased with everything else.' });
  const ask = button('Ask to erase my data', { type: 'submit', id: 'erasure-ask', variant: 'danger' });
  const form = h('form', { class: 'mt-4 space-y-3', novalidate: true }, reason.el, ask, msg.el);
  onSubmit(form, async () => {
    msg.clear();
    reason.setError('');
    const text = reason.input.value.trim();
    if (showErrors(text ? [] : [[reason, 'Say why you ask.']], msg)) return;
    try {
      /** @type {{ request_id: string, block_height: number }} */
      const r = await busy(ask, () => post('/api/erasure', { reason: text }), 'Recording your request on the ledger…');
      msg.show('success', `Request ${r.request_id} recorded (block #${r.block_height}). Once your department approves it, your records and your name are erased on every replica and can no longer be read by anyone.`);
      reason.input.value = '';
    } catch (e) {
      if (!markField(e, { reason })) msg.error(e);
    }
  });
  return card('Erase my data',
    h('p', { class: 'text-sm text-slate-700' },
      'Your records are encrypted under keys only entitled organisations hold. Erasure deletes those keys and the encrypted records everywhere; the audit trail of who read your data stays, under your patient ID only.'),
    form);
}

/** Most pages of the FHIR export one download follows. */
const FHIR_PAGES_MAX = 50;

/**
 * A FHIR Bundle as far as the download needs to know it.
 * @typedef {{ entry?: Array<{ fullUrl: string }>, link?: Array<{ relation: string, url: string }> }} BundlePage
 */

/**
 * The patient's whole export: `$everything` page after page (each page's `link` `next`),
 * joined into one Bundle (the patient and organisations, which every page repeats, once).
 * Each page is one audited read.
 * @param {string} me
 * @returns {Promise<{ blob: Blob, complete: boolean }>}
 */
async function wholeExport(me) {
  let path = `/fhir/Patient/${encodeURIComponent(me)}/$everything`;
  /** @type {BundlePage | null} */
  let whole = null;
  const seen = new Set();
  for (let i = 0; i < FHIR_PAGES_MAX && path; i++) {
    /** @type {Response} */
    const res = await request('GET', path, undefined, { raw: true, accept: 'application/fhir+json' });
    /** @type {BundlePage} */
    const page = await res.json();
    if (!whole) whole = { ...page, entry: [] };
    for (const e of page.entry || []) {
      if (seen.has(e.fullUrl)) continue;
      seen.add(e.fullUrl);
      /** @type {Array<{ fullUrl: string }>} */ (whole.entry).push(e);
    }
    const next = (page.link || []).find((l) => l.relation === 'next');
    // The link is absolute under the node's configured address; ask this origin for it.
    path = next ? (() => { const u = new URL(next.url); return u.pathname + u.search; })() : '';
  }
  const bundle = /** @type {BundlePage} */ (whole);
  bundle.link = (bundle.link || []).filter((l) => l.relation === 'self');
  return { blob: new Blob([JSON.stringify(bundle)], { type: 'application/fhir+json' }), complete: !path };
}

/** @param {string} me */
function downloadCard(me) {
  const dlBtn = button('Download my data (FHIR)', { variant: 'secondary', id: 'fhir-download' });
  const dlMsg = notice();
  dlBtn.addEventListener('click', async () => {
    dlMsg.clear();
    try {
      const { blob, complete } = await busy(dlBtn, () => wholeExport(me), 'Preparing…');
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `medchain-${me}-fhir.json`, class: 'hidden' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      dlMsg.show(complete ? 'success' : 'error', complete
        ? 'Your records were downloaded as a FHIR R4 bundle (JSON).'
        : `Your first ${FHIR_PAGES_MAX} pages were downloaded; the rest did not fit one download (the API serves them page by page).`);
    } catch (e) {
      dlMsg.error(e);
    }
  });
  return actionCard('My data',
    'Download everything MedChain holds about you in the FHIR standard, to keep or to give to another provider.',
    dlBtn, dlMsg.el);
}

// ---- who read the data ------------------------------------------------------------

/**
 * The audit trail; the patient's own views are left out unless asked for.
 * @param {string} me
 */
function auditCard(me) {
  const showOwn = h('input', { type: 'checkbox', id: 'audit-own', class: 'size-4 rounded border-slate-400' });
  const box = h('div', { id: 'audit' }, loading());
  /** @type {import('./api.js').AuditView[]} */
  let rows = [];
  /** @type {import('./alerts.js').AccessAlert[]} */
  let flags = [];
  /** The access monitor's flag on this read, if any (same reader, same block). */
  const flagOf = (/** @type {import('./api.js').AuditView} */ a) =>
    flags.find((f) => f.user_id === a.reader_id && f.block_height === a.block_height);
  const content = () => {
    const shown = showOwn.checked ? rows : rows.filter((a) => a.reader_id !== me);
    return shown.length
      ? table('Who read your data', [
        ['When', (a) => fmtTime(a.at_ms)],
        ['Who', (a) => (a.reader_id === me ? 'You' : h('span', { class: 'font-medium' }, a.reader_id))],
        ['Role', (a) => ROLE_LABEL[a.reader_role] || a.reader_role],
        ['What', (a) => ACTION_LABEL[a.action] || a.action],
        ['Why', (a) => (a.reason === 'break-glass' ? badge('Emergency (break-glass)', 'amber') : a.reason)],
        ['Flag', (a) => {
          const f = flagOf(a);
          if (!f) return '';
          const verdict = f.review ? ` · reviewed: ${f.review.outcome}` : ' · under review';
          return h('span', { title: f.explanation, class: 'flagged-read' }, badge(`${RULE_LABEL[f.rule] || f.rule}${verdict}`, 'red'));
        }],
        ['Block', (a) => `#${a.block_height}`],
      ], shown, { rowAttrs: (a) => ({ 'data-flagged': flagOf(a) ? 'true' : null }) })
      : empty('Nobody else has read your data.');
  };
  showOwn.addEventListener('change', () => put(box, content()));
  return {
    el: card('Who read my data',
      h('div', { class: 'mb-3 flex items-center gap-2 text-sm' }, showOwn,
        h('label', { for: 'audit-own', class: 'text-slate-800' }, 'Include my own views')),
      box),
    load: () => loadInto(box, (/** @type {typeof rows} */ list) => {
      rows = list;
      return content();
    }, async () => {
      // The flags are a help, not the trail: without them the trail still shows.
      flags = await fetchAlerts().then((r) => r.alerts, () => []);
      return get('/api/audit?limit=200');
    }),
  };
}

function breakGlassCard() {
  const box = h('div', { id: 'break-glass-events' }, loading());
  /** @param {import('./api.js').BreakGlassView[]} list */
  const draw = (list) => (list.length
    ? table('Emergency access to your records', [
      ['When', (b) => fmtTime(b.at_ms)],
      ['Doctor', (b) => `${b.doctor_id} · ${b.department}`],
      ['Reason', (b) => b.reason],
      ['Access until', (b) => fmtTime(b.until_ms)],
      ['Review by your department', (b) => (b.reviewed_by
        ? h('div', { class: 'space-y-1' },
          h('p', {}, badge('Reviewed', 'green'), ` ${fmtTime(b.reviewed_at_ms)} by ${b.reviewed_by}`),
          b.review_note ? h('p', { class: 'text-slate-700' }, `“${b.review_note}”`) : null)
        : badge('Not reviewed yet', 'amber'))],
      ['Block', (b) => `#${b.block_height}`],
    ], list, { rowAttrs: (b) => ({ 'data-event-id': b.id }) })
    : empty('No emergency access to your records has been recorded.'));
  return {
    el: card('Emergency access (break-glass)', box),
    load: () => loadInto(box, draw, () => get('/api/break_glass')),
  };
}
