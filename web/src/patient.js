// @ts-check
// Why this file exists: the patient's own view. Their records as a timeline, who may see
// them (grant and revoke consent), a one-time code for a doctor, who has read their data
// (the ledger's audit trail, break-glass included), and a download of everything (FHIR).

import { get, post, request } from './api.js';
import {
  h, put, card, badge, button, busy, field, notice, loading, empty, table, pageTitle,
  fmtTime, fmtDate, ROLE_LABEL, ACTION_LABEL,
} from './ui.js';
import { timeline } from './records.js';

const KIND_LABEL = { doctor: 'Doctor', department: 'Department', pharmacy: 'Pharmacy' };

export function render(main, { session }) {
  const me = session.user_id;

  // ---- timeline ----
  const recordsBox = h('div', { id: 'my-records' }, loading('Loading your records…'));
  async function loadRecords() {
    try {
      const chain = await post('/api/get_chain', { patient_id: me });
      put(recordsBox, timeline(chain.records, { emptyText: 'You have no records yet.' }));
    } catch (e) {
      const m = notice();
      m.error(e);
      put(recordsBox, m.el);
    }
  }

  // ---- consents ----
  const consentBox = h('div', { id: 'consents', 'aria-live': 'polite' }, loading());
  const consentMsg = notice();
  async function loadConsents() {
    try {
      const list = await get('/api/consents');
      put(consentBox, consentList(list));
    } catch (e) {
      const m = notice();
      m.error(e);
      put(consentBox, m.el);
    }
  }

  function consentList(list) {
    const active = list.filter((c) => c.active);
    const past = list.filter((c) => !c.active);
    const row = (c) => h('li', { class: 'flex items-center justify-between gap-3 py-2', 'data-grantee': `${c.grantee_kind}:${c.grantee_id}` },
      h('div', {},
        h('p', { class: 'font-medium text-slate-900' }, `${KIND_LABEL[c.grantee_kind] || c.grantee_kind} ${c.grantee_id}`),
        h('p', { class: 'text-sm text-slate-600' },
          c.active
            ? `${c.granted_at_ms ? `Since ${fmtDate(c.granted_at_ms)}` : 'Standing consent'}${c.expires_at_ms ? ` · until ${fmtDate(c.expires_at_ms)}` : ' · no end date'}`
            : c.revoked_at_ms ? `Revoked ${fmtDate(c.revoked_at_ms)}` : `Expired ${fmtDate(c.expires_at_ms)}`)),
      c.active
        ? button('Revoke', {
          variant: 'secondary', small: true,
          ariaLabel: `Revoke access for ${KIND_LABEL[c.grantee_kind] || c.grantee_kind} ${c.grantee_id}`,
          onClick: (ev) => revoke(ev.currentTarget, c),
        })
        : badge(c.revoked_at_ms ? 'Revoked' : 'Expired', 'slate'));
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

  async function revoke(btn, c) {
    consentMsg.clear();
    try {
      const r = await busy(btn, () => post('/api/consents/revoke', { grantee_kind: c.grantee_kind, grantee_id: c.grantee_id }), 'Revoking…');
      consentMsg.show('success', `Access for ${KIND_LABEL[c.grantee_kind]} ${c.grantee_id} revoked (block #${r.block_height}).`);
      await loadConsents();
    } catch (e) {
      consentMsg.error(e);
    }
  }

  const kind = field({ label: 'Who', id: 'consent-kind', type: 'select', options: [['doctor', 'A doctor'], ['department', 'A department'], ['pharmacy', 'A pharmacy']] });
  const grantee = field({ label: 'Their ID', id: 'consent-grantee', required: true, autocomplete: 'off', maxlength: 64, hint: 'For example d002 (doctor), cardiology (department) or ph001 (pharmacy).' });
  const expires = field({ label: 'Until (optional)', id: 'consent-expires', type: 'date', hint: 'Leave empty for no end date; you can revoke at any time.' });
  const grantBtn = button('Grant access', { type: 'submit', id: 'consent-submit' });
  const grantForm = h('form', { class: 'mt-5 space-y-4 border-t border-slate-200 pt-5', novalidate: true },
    h('h3', { class: 'font-semibold text-slate-900' }, 'Give access'),
    kind.el, grantee.el, expires.el, grantBtn);
  grantForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    consentMsg.clear();
    grantee.setError('');
    expires.setError('');
    const id = grantee.input.value.trim();
    if (!id) {
      grantee.setError('Enter the ID of who you give access to.');
      grantee.input.focus();
      return;
    }
    const body = { grantee_kind: kind.input.value, grantee_id: id };
    if (expires.input.value) {
      const end = new Date(`${expires.input.value}T23:59:59`).getTime();
      if (!(end > Date.now())) {
        expires.setError('Choose a date in the future.');
        expires.input.focus();
        return;
      }
      body.expires_at_ms = end;
    }
    try {
      const r = await busy(grantBtn, () => post('/api/consents', body), 'Granting…');
      consentMsg.show('success', `${KIND_LABEL[body.grantee_kind]} ${id} can now see your records (block #${r.block_height}).`);
      grantForm.reset();
      await loadConsents();
    } catch (e) {
      consentMsg.error(e);
      if (e.status === 422 || e.status === 404) grantee.setError(e.message);
    }
  });

  // ---- one-time code ----
  const codeBtn = button('Generate one-time code', { id: 'code-generate' });
  const codeOut = h('div', { 'aria-live': 'polite' });
  const codeMsg = notice();
  codeBtn.addEventListener('click', async () => {
    codeMsg.clear();
    try {
      const c = await busy(codeBtn, () => post('/api/consent_codes'), 'Generating…');
      put(codeOut, h('div', { class: 'mt-4 rounded-md border-2 border-teal-600 bg-teal-50 p-4 text-center' },
        h('p', { class: 'text-sm text-slate-700' }, 'Your one-time code'),
        h('p', { id: 'consent-code', class: 'my-1 font-mono text-2xl font-semibold tracking-wider text-slate-900' }, c.code),
        h('p', { class: 'text-sm text-slate-700' }, `Valid until ${fmtTime(c.expires_at_ms)}. It lets one doctor add one record.`)));
    } catch (e) {
      codeMsg.error(e);
    }
  });

  // ---- download ----
  const dlBtn = button('Download my data (FHIR)', { variant: 'secondary', id: 'fhir-download' });
  const dlMsg = notice();
  dlBtn.addEventListener('click', async () => {
    dlMsg.clear();
    try {
      const blob = await busy(dlBtn, async () => {
        const res = await request('GET', `/fhir/Patient/${encodeURIComponent(me)}/$everything`, undefined,
          { raw: true, accept: 'application/fhir+json' });
        return res.blob();
      }, 'Preparing…');
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `medchain-${me}-fhir.json`, class: 'hidden' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      dlMsg.show('success', 'Your records were downloaded as a FHIR R4 bundle (JSON).');
    } catch (e) {
      dlMsg.error(e);
    }
  });

  // ---- audit and break-glass ----
  const showOwn = h('input', { type: 'checkbox', id: 'audit-own', class: 'size-4 rounded border-slate-400' });
  const auditBox = h('div', { id: 'audit' }, loading());
  let auditRows = [];
  function drawAudit() {
    const rows = showOwn.checked ? auditRows : auditRows.filter((a) => a.reader_id !== me);
    put(auditBox, rows.length
      ? table('Who read your data', [
        ['When', (a) => fmtTime(a.at_ms)],
        ['Who', (a) => (a.reader_id === me ? 'You' : h('span', { class: 'font-medium' }, a.reader_id))],
        ['Role', (a) => ROLE_LABEL[a.reader_role] || a.reader_role],
        ['What', (a) => ACTION_LABEL[a.action] || a.action],
        ['Why', (a) => (a.reason === 'break-glass' ? badge('Emergency (break-glass)', 'amber') : a.reason)],
        ['Block', (a) => `#${a.block_height}`],
      ], rows)
      : empty('Nobody else has read your data.'));
  }
  showOwn.addEventListener('change', drawAudit);
  async function loadAudit() {
    try {
      auditRows = await get('/api/audit?limit=200');
      drawAudit();
    } catch (e) {
      const m = notice();
      m.error(e);
      put(auditBox, m.el);
    }
  }

  const bgBox = h('div', { id: 'break-glass-events' }, loading());
  async function loadBreakGlass() {
    try {
      const list = await get('/api/break_glass');
      put(bgBox, list.length
        ? table('Emergency access to your records', [
          ['When', (b) => fmtTime(b.at_ms)],
          ['Doctor', (b) => `${b.doctor_id} · ${b.department}`],
          ['Reason', (b) => b.reason],
          ['Access until', (b) => fmtTime(b.until_ms)],
          ['Block', (b) => `#${b.block_height}`],
        ], list)
        : empty('No emergency access to your records has been recorded.'));
    } catch (e) {
      const m = notice();
      m.error(e);
      put(bgBox, m.el);
    }
  }

  main.append(
    pageTitle('My health record', `${session.display_name || me} · Patient ID ${me}`),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6 lg:col-span-2' },
        card('Timeline', recordsBox),
        card('Who read my data',
          h('div', { class: 'mb-3 flex items-center gap-2 text-sm' }, showOwn,
            h('label', { for: 'audit-own', class: 'text-slate-800' }, 'Include my own views')),
          auditBox),
        card('Emergency access (break-glass)', bgBox)),
      h('div', { class: 'space-y-6' },
        card('Who can see my records', consentMsg.el, consentBox, grantForm),
        card('One-time code',
          h('p', { class: 'text-sm text-slate-700' }, 'Seeing a doctor who has no access? A one-time code lets them add a single record without seeing your history.'),
          h('div', { class: 'mt-4' }, codeBtn), codeMsg.el, codeOut),
        card('My data',
          h('p', { class: 'text-sm text-slate-700' }, 'Download everything MedChain holds about you in the FHIR standard, to keep or to give to another provider.'),
          h('div', { class: 'mt-4' }, dlBtn), dlMsg.el))));

  loadRecords().then(loadAudit);
  loadConsents();
  loadBreakGlass();
}
