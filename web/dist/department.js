// @ts-check
// Why this file exists: the department administrator's screen. Register and deactivate
// the department's doctors and patients (and pharmacies), see the department's record
// activity (metadata only, no clinical content), who read records, and break-glass events.

import { ApiError, get, post, query } from './api.js';
import {
  h, put, card, badge, button, busy, field, notice, loading, loadInto, empty, table, pageTitle,
  fmtTime, ROLE_LABEL, ACTION_LABEL, markField, showErrors, onSubmit,
} from './ui.js';

/** @typedef {import('./api.js').UserView} UserView */
/** @typedef {import('./api.js').Session} Session */

/**
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
export function render(main, { session }) {
  const users = usersCard(session);
  const activityBox = h('div', { id: 'activity' }, loading());
  const auditBox = h('div', { id: 'dept-audit' }, loading());
  const bgBox = h('div', { id: 'dept-break-glass' }, loading());

  main.append(
    pageTitle(`Department: ${session.department || ''}`, session.display_name),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6 lg:col-span-2' },
        users.el,
        card('Activity', h('p', { class: 'mb-3 text-sm text-slate-600' }, 'Records added in this department (who, for whom, when; no clinical content).'), activityBox)),
      h('div', { class: 'space-y-6' },
        card('Register a person', registerForm(users.load)))),
    h('div', { class: 'mt-6 grid grid-cols-1 gap-6 xl:grid-cols-2' },
      card('Break-glass events', bgBox),
      card('Who read records', auditBox)));

  users.load();
  loadInto(activityBox, (/** @type {import('./api.js').Activity} */ d) => (d.records.length ? activityTable(d.records) : empty('No records in this department yet.')),
    () => get('/api/department/activity?limit=100'));
  loadInto(bgBox, (/** @type {import('./api.js').BreakGlassView[]} */ rows) => (rows.length ? breakGlassTable(rows) : empty('No break-glass events.')),
    () => get('/api/break_glass?limit=100'));
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

/** @param {import('./api.js').BreakGlassView[]} rows */
const breakGlassTable = (rows) => table('Break-glass events', [
  ['When', (b) => fmtTime(b.at_ms)],
  ['Doctor', (b) => b.doctor_id],
  ['Patient', (b) => b.patient_id],
  ['Reason', (b) => b.reason],
  ['Until', (b) => fmtTime(b.until_ms)],
  ['Block', (b) => `#${b.block_height}`],
], rows);
