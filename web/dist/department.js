// @ts-check
// Why this file exists: the department administrator's screen. Register and deactivate
// the department's doctors and patients (and pharmacies), see the department's record
// activity (metadata only, no clinical content), who read records, and break-glass events;
// review each emergency access to the department's patients (an alert until reviewed) and
// approve, as second approver, one beyond a doctor's daily limit; sign the
// organisation's co-signed proposals (approvals.js); review the access monitor's
// alerts (alerts.js).

import { ApiError, get, post, query } from './api.js';
import {
  h, put, card, badge, button, busy, field, notice, loading, loadInto, empty, table, pageTitle,
  facts, fmtTime, ROLE_LABEL, ACTION_LABEL, markField, showErrors, onSubmit,
} from './ui.js';
import { approveCard } from './doctor.js';
import { approvalsCard } from './approvals.js';
import { accessAlertsCard } from './alerts.js';

/** @typedef {import('./api.js').UserView} UserView */
/** @typedef {import('./api.js').Session} Session */
/** @typedef {import('./api.js').BreakGlassView} BreakGlassView */

/** The ledger's bound on a review note (REVIEW_NOTE_MAX_CHARS). */
const REVIEW_NOTE_MAX_CHARS = 1000;

/**
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
export function render(main, { session }) {
  const users = usersCard(session);
  const activityBox = h('div', { id: 'activity' }, loading());
  const auditBox = h('div', { id: 'dept-audit' }, loading());
  const bgBox = h('div', { id: 'dept-break-glass' }, loading());
  const loadEvents = () => loadInto(bgBox, (/** @type {BreakGlassView[]} */ rows) => (rows.length ? breakGlassTable(rows) : empty('No break-glass events.')),
    () => get('/api/break_glass?limit=100'));
  const alerts = alertsCard(loadEvents);
  const approvals = approvalsCard();
  const accessAlerts = accessAlertsCard();

  main.append(
    pageTitle(`Department: ${session.department || ''}`, session.display_name),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6 lg:col-span-2' },
        alerts.el,
        accessAlerts.el,
        users.el,
        card('Activity', h('p', { class: 'mb-3 text-sm text-slate-600' }, 'Records added in this department (who, for whom, when; no clinical content).'), activityBox)),
      h('div', { class: 'space-y-6' },
        approvals.el,
        card('Register a person', registerForm(users.load)),
        approveCard({
          self: null,
          intro: 'A doctor who reached the daily limit of emergency accesses needs a second approver for one more on a patient of this department. Your approval is written to the ledger.',
        }))),
    h('div', { class: 'mt-6 grid grid-cols-1 gap-6 xl:grid-cols-2' },
      card('Break-glass events', bgBox),
      card('Who read records', auditBox)));

  users.load();
  alerts.load();
  approvals.load();
  accessAlerts.load();
  loadInto(activityBox, (/** @type {import('./api.js').Activity} */ d) => (d.records.length ? activityTable(d.records) : empty('No records in this department yet.')),
    () => get('/api/department/activity?limit=100'));
  loadEvents();
  loadInto(auditBox, (/** @type {import('./api.js').AuditView[]} */ rows) => (rows.length ? auditTable(rows) : empty('No reads recorded.')),
    () => get('/api/audit?limit=100'));
}

// ---- users ------------------------------------------------------------------------

/**
 * The department's people, filtered by role and name, each active one (but the
 * administrators) with a deactivate button.
 * @param {Session} session
 */
function usersCard(session) {
  const role = field({ label: 'Role', id: 'users-role', type: 'select', options: [['', 'All roles'], ['doctor', 'Doctors'], ['patient', 'Patients'], ['pharmacy', 'Pharmacies'], ['department', 'Administrators']] });
  const search = field({ label: 'Search', id: 'users-search', autocomplete: 'off', placeholder: 'Name or ID' });
  const filterBtn = button('Filter', { type: 'submit', variant: 'secondary', id: 'users-filter' });
  const box = h('div', { id: 'users', 'aria-live': 'polite' }, loading());
  const msg = notice();
  const filter = h('form', { class: 'mb-4 grid grid-cols-1 items-end gap-3 sm:grid-cols-[10rem_1fr_auto]', role: 'search' },
    role.el, search.el, filterBtn);

  async function load() {
    try {
      /** @type {UserView[]} */
      const list = await busy(filterBtn, () => get(`/api/users${query({ role: role.input.value, search: search.input.value.trim(), limit: 200 })}`), 'Filtering…');
      put(box, list.length ? usersTable(list, session, deactivate) : empty('No users match.'));
    } catch (e) {
      box.replaceChildren();
      msg.error(e);
      markField(e, { role, search });
    }
  }
  /**
   * @param {HTMLButtonElement} btn
   * @param {UserView} u
   */
  async function deactivate(btn, u) {
    msg.clear();
    try {
      /** @type {import('./api.js').Done} */
      const r = await busy(btn, () => post(`/api/users/${encodeURIComponent(u.user_id)}/deactivate`), 'Deactivating…');
      msg.show('success', `${u.display_name} (${u.user_id}) was deactivated (block #${r.block_height}). They can no longer sign in.`);
      await load();
    } catch (e) {
      msg.error(e);
    }
  }
  onSubmit(filter, () => {
    msg.clear();
    for (const f of [role, search]) f.setError('');
    return load();
  });
  return { el: card('Staff and patients', filter, msg.el, box), load };
}

/**
 * @param {UserView[]} list
 * @param {Session} session
 * @param {(btn: HTMLButtonElement, u: UserView) => void} deactivate
 */
function usersTable(list, session, deactivate) {
  /** @param {UserView} u */
  const deactivateButton = (u) => {
    const btn = button('Deactivate', { variant: 'secondary', small: true, ariaLabel: `Deactivate ${u.display_name} (${u.user_id})`, onClick: () => deactivate(btn, u) });
    return btn;
  };
  return table('Users', [
    ['Name', (u) => h('span', { class: 'font-medium' }, u.display_name)],
    ['ID', (u) => h('span', { class: 'font-mono' }, u.user_id)],
    ['Role', (u) => ROLE_LABEL[u.role] || u.role],
    ['Department', (u) => u.department],
    ['Status', (u) => (u.active ? badge('Active', 'green') : badge('Deactivated', 'slate'))],
    ['', (u) => (u.active && u.user_id !== session.user_id && u.role !== 'department' ? deactivateButton(u) : null)],
  ], list, { rowAttrs: (u) => ({ 'data-user-id': u.user_id }) });
}

/**
 * Register a patient, doctor or pharmacy in the department.
 * @param {() => Promise<void>} onRegistered
 */
function registerForm(onRegistered) {
  const msg = notice();
  const newId = field({ label: 'User ID', id: 'reg-id', required: true, autocomplete: 'off', maxlength: 64, hint: 'Letters, digits, “-”, “_” or “.”; used to sign in.' });
  const newRole = field({ label: 'Role', id: 'reg-role', type: 'select', options: [['patient', 'Patient'], ['doctor', 'Doctor'], ['pharmacy', 'Pharmacy']] });
  const newName = field({ label: 'Full name', id: 'reg-name', required: true, maxlength: 100, autocomplete: 'off' });
  const newPass = field({ label: 'Initial password', id: 'reg-password', type: 'password', required: true, autocomplete: 'new-password', hint: 'At least 8 characters. Give it to the person securely.' });
  const regBtn = button('Register', { type: 'submit', id: 'reg-submit' });
  const form = h('form', { class: 'space-y-4', novalidate: true }, newId.el, newRole.el, newName.el, newPass.el, regBtn, msg.el);
  /** The request's fields, by the names the API gives in an error's `field`. */
  const fields = { user_id: newId, display_name: newName, password: newPass, role: newRole };

  onSubmit(form, async () => {
    msg.clear();
    for (const f of Object.values(fields)) f.setError('');
    const body = {
      user_id: newId.input.value.trim(),
      role: newRole.input.value,
      display_name: newName.input.value.trim(),
      password: newPass.input.value,
    };
    /** @type {Array<[import('./ui.js').Field, string]>} */
    const errors = [];
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(body.user_id)) errors.push([newId, 'Use 1 to 64 letters, digits, “-”, “_” or “.”.']);
    if (!body.display_name) errors.push([newName, 'Enter the full name.']);
    if (body.password.length < 8) errors.push([newPass, 'Use at least 8 characters.']);
    if (showErrors(errors)) return;
    try {
      /** @type {import('./api.js').Done} */
      const r = await busy(regBtn, () => post('/api/users', body), 'Registering…');
      msg.show('success', `${body.display_name} (${body.user_id}) is registered as ${ROLE_LABEL[body.role].toLowerCase()} (block #${r.block_height}) and can sign in now; at first sign-in they choose their own password.`);
      form.reset();
      onRegistered();
    } catch (e) {
      msg.error(e);
      // A conflict names no field: it can only be the user ID, which is taken.
      if (!markField(e, fields) && e instanceof ApiError && e.code === 'conflict') newId.setError(e.message);
    }
  });
  return form;
}

// ---- activity, audit, break-glass -------------------------------------------------

/** @param {import('./api.js').ActivityView[]} rows */
const activityTable = (rows) => table('Department activity', [
  ['When', (r) => fmtTime(r.created_at_ms)],
  ['Patient', (r) => r.patient_id],
  ['Doctor', (r) => r.doctor_id],
  ['Prescription', (r) => (r.has_prescription ? (r.dispensed ? badge('Dispensed', 'green') : badge('Open', 'amber')) : '—')],
  ['Block', (r) => `#${r.block_height}`],
  ['Record', (r) => h('span', { class: 'font-mono text-xs' }, r.record_id)],
], rows);

/** @param {import('./api.js').AuditView[]} rows */
const auditTable = (rows) => table('Who read records', [
  ['When', (a) => fmtTime(a.at_ms)],
  ['Reader', (a) => `${a.reader_id} (${ROLE_LABEL[a.reader_role] || a.reader_role})`],
  ['Patient', (a) => a.patient_id],
  ['Action', (a) => ACTION_LABEL[a.action] || a.action],
  ['Reason', (a) => (a.reason === 'break-glass' ? badge('Break-glass', 'amber') : a.reason)],
  ['Block', (a) => `#${a.block_height}`],
], rows);

/** @param {BreakGlassView[]} rows */
const breakGlassTable = (rows) => table('Break-glass events', [
  ['When', (b) => fmtTime(b.at_ms)],
  ['Doctor', (b) => b.doctor_id],
  ['Patient', (b) => b.patient_id],
  ['Reason', (b) => b.reason],
  ['Until', (b) => fmtTime(b.until_ms)],
  ['Review', (b) => (b.reviewed_by
    ? h('span', { title: b.review_note || '' }, badge('Reviewed', 'green'), ` by ${b.reviewed_by}`)
    : badge('To review', 'amber'))],
  ['Block', (b) => `#${b.block_height}`],
], rows, { rowAttrs: (b) => ({ 'data-event-id': b.id }) });

// ---- break-glass alerts -----------------------------------------------------------

/**
 * The open alerts: every break-glass opening on the department's patients not yet
 * reviewed, each with its review form. A review leaves the list (and `onReviewed`
 * redraws the events table, which then shows it as reviewed).
 * @param {() => Promise<void>} onReviewed
 */
function alertsCard(onReviewed) {
  const box = h('div', { id: 'bg-alerts', 'aria-live': 'polite' }, loading());
  const msg = notice();
  const load = () => loadInto(box, (/** @type {BreakGlassView[]} */ list) => alertList(list),
    () => get('/api/break_glass/alerts?limit=100'));

  /** @param {BreakGlassView[]} list */
  function alertList(list) {
    if (!list.length) return noAlerts();
    return h('ul', { class: 'space-y-4', 'aria-label': 'Break-glass alerts to review' }, list.map(alertItem));
  }
  const noAlerts = () => empty('No break-glass alerts to review: every emergency access to this department’s patients has been reviewed.');

  /** @param {BreakGlassView} b */
  function alertItem(b) {
    const itemMsg = notice();
    const note = field({
      label: 'Review note', id: `bg-review-note-${b.id}`, type: 'textarea', rows: 2, required: true, maxlength: REVIEW_NOTE_MAX_CHARS,
      hint: `What you checked and concluded, at most ${REVIEW_NOTE_MAX_CHARS} characters. Written to the ledger; the patient sees it.`,
    });
    const submit = button('Mark reviewed', { type: 'submit', id: `bg-review-submit-${b.id}`, ariaLabel: `Mark break-glass by ${b.doctor_id} on ${b.patient_id} reviewed` });
    const form = h('form', { class: 'mt-3 space-y-3', novalidate: true }, note.el, submit, itemMsg.el);
    const item = h('li', { class: 'rounded-md border border-amber-300 bg-amber-50/40 p-4', 'data-alert-id': b.id },
      facts([
        ['Doctor', `${b.doctor_id} · ${b.department}`],
        ['Patient', b.patient_id],
        ['Opened', fmtTime(b.at_ms)],
        ['Access until', fmtTime(b.until_ms)],
        ['Reason', b.reason],
        ['Block', `#${b.block_height}`],
      ]),
      form);
    onSubmit(form, async () => {
      msg.clear();
      itemMsg.clear();
      note.setError('');
      const text = note.input.value.trim();
      if (showErrors(text ? [] : [[note, 'Write what you checked before marking this reviewed.']])) return;
      if (showErrors([...text].length <= REVIEW_NOTE_MAX_CHARS ? [] : [[note, `Use at most ${REVIEW_NOTE_MAX_CHARS} characters.`]])) return;
      try {
        /** @type {import('./api.js').Done} */
        const r = await busy(submit, () => post(`/api/break_glass/${encodeURIComponent(b.id)}/review`, { note: text }), 'Recording on the ledger…');
        msg.show('success', `Emergency access by ${b.doctor_id} to ${b.patient_id} marked reviewed (block #${r.block_height}).`);
        const following = item.nextElementSibling || item.previousElementSibling;
        item.remove();
        if (following) following.querySelector('textarea')?.focus();
        else put(box, noAlerts());
        onReviewed();
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) {
          // Someone reviewed it meanwhile: say so and show the list as it is now.
          msg.error(e);
          load();
          return;
        }
        itemMsg.error(e);
        markField(e, { note });
      }
    });
    return item;
  }
  return {
    el: card('Break-glass alerts to review',
      h('p', { class: 'mb-3 text-sm text-slate-600' },
        'Every emergency access to this department’s patients stays here until you review it. Check that the reason holds, then write what you found.'),
      msg.el, box),
    load,
  };
}
