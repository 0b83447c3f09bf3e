// @ts-check
// Why this file exists: the department administrator's screen. Register and deactivate
// the department's doctors and patients (and pharmacies), see the department's record
// activity (metadata only, no clinical content), who read records, and break-glass events.

import { get, post, query } from './api.js';
import {
  h, put, card, badge, button, busy, field, notice, loading, empty, table, pageTitle,
  fmtTime, ROLE_LABEL, ACTION_LABEL,
} from './ui.js';

export function render(main, { session }) {
  // ---- users ----
  const role = field({ label: 'Role', id: 'users-role', type: 'select', options: [['', 'All roles'], ['doctor', 'Doctors'], ['patient', 'Patients'], ['pharmacy', 'Pharmacies'], ['department', 'Administrators']] });
  const search = field({ label: 'Search', id: 'users-search', autocomplete: 'off', placeholder: 'Name or ID' });
  const filterBtn = button('Filter', { type: 'submit', variant: 'secondary', id: 'users-filter' });
  const usersBox = h('div', { id: 'users', 'aria-live': 'polite' }, loading());
  const usersMsg = notice();
  const filter = h('form', { class: 'mb-4 grid grid-cols-1 items-end gap-3 sm:grid-cols-[10rem_1fr_auto]', role: 'search' },
    role.el, search.el, filterBtn);
  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    loadUsers();
  });

  async function loadUsers() {
    try {
      const list = await busy(filterBtn, () => get(`/api/users${query({ role: role.input.value, search: search.input.value.trim(), limit: 200 })}`), 'Filtering…');
      put(usersBox, list.length
        ? table('Users', [
          ['Name', (u) => h('span', { class: 'font-medium' }, u.display_name)],
          ['ID', (u) => h('span', { class: 'font-mono' }, u.user_id)],
          ['Role', (u) => ROLE_LABEL[u.role] || u.role],
          ['Department', (u) => u.department],
          ['Status', (u) => (u.active ? badge('Active', 'green') : badge('Deactivated', 'slate'))],
          ['', (u) => (u.active && u.user_id !== session.user_id && u.role !== 'department'
            ? button('Deactivate', { variant: 'secondary', small: true, ariaLabel: `Deactivate ${u.display_name} (${u.user_id})`, onClick: (ev) => deactivate(ev.currentTarget, u) })
            : null)],
        ], list, { rowAttrs: (u) => ({ 'data-user-id': u.user_id }) })
        : empty('No users match.'));
    } catch (e) {
      usersBox.replaceChildren();
      usersMsg.error(e);
    }
  }

  async function deactivate(btn, u) {
    usersMsg.clear();
    try {
      const r = await busy(btn, () => post(`/api/users/${encodeURIComponent(u.user_id)}/deactivate`), 'Deactivating…');
      usersMsg.show('success', `${u.display_name} (${u.user_id}) was deactivated (block #${r.block_height}). They can no longer sign in.`);
      await loadUsers();
    } catch (e) {
      usersMsg.error(e);
    }
  }

  // ---- register ----
  const regMsg = notice();
  const newId = field({ label: 'User ID', id: 'reg-id', required: true, autocomplete: 'off', maxlength: 64, hint: 'Letters, digits, “-”, “_” or “.”; used to sign in.' });
  const newRole = field({ label: 'Role', id: 'reg-role', type: 'select', options: [['patient', 'Patient'], ['doctor', 'Doctor'], ['pharmacy', 'Pharmacy']] });
  const newName = field({ label: 'Full name', id: 'reg-name', required: true, maxlength: 100, autocomplete: 'off' });
  const newPass = field({ label: 'Initial password', id: 'reg-password', type: 'password', required: true, autocomplete: 'new-password', hint: 'At least 8 characters. Give it to the person securely.' });
  const regBtn = button('Register', { type: 'submit', id: 'reg-submit' });
  const regForm = h('form', { class: 'space-y-4', novalidate: true }, newId.el, newRole.el, newName.el, newPass.el, regBtn, regMsg.el);
  const regFields = { user_id: newId, display_name: newName, password: newPass, role: newRole };
  regForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    regMsg.clear();
    for (const f of Object.values(regFields)) f.setError('');
    const body = {
      user_id: newId.input.value.trim(),
      role: newRole.input.value,
      display_name: newName.input.value.trim(),
      password: newPass.input.value,
    };
    const errors = [];
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(body.user_id)) errors.push([newId, 'Use 1 to 64 letters, digits, “-”, “_” or “.”.']);
    if (!body.display_name) errors.push([newName, 'Enter the full name.']);
    if (body.password.length < 8) errors.push([newPass, 'Use at least 8 characters.']);
    if (errors.length) {
      for (const [f, m] of errors) f.setError(m);
      errors[0][0].input.focus();
      return;
    }
    try {
      const r = await busy(regBtn, () => post('/api/users', body), 'Registering…');
      regMsg.show('success', `${body.display_name} (${body.user_id}) is registered as ${ROLE_LABEL[body.role].toLowerCase()} (block #${r.block_height}) and can sign in now.`);
      regForm.reset();
      loadUsers();
    } catch (e) {
      regMsg.error(e);
      const m = /^([a-z_]+):\s*(.*)$/.exec(e.message || '');
      if (m && regFields[m[1]]) regFields[m[1]].setError(m[2]);
      else if (e.status === 409) newId.setError(e.message);
    }
  });

  // ---- activity, audit, break-glass ----
  const activityBox = h('div', { id: 'activity' }, loading());
  const auditBox = h('div', { id: 'dept-audit' }, loading());
  const bgBox = h('div', { id: 'dept-break-glass' }, loading());

  async function fill(box, path, draw, emptyText) {
    try {
      const data = await get(path);
      const rows = draw.pick ? draw.pick(data) : data;
      put(box, rows.length ? draw(rows) : empty(emptyText));
    } catch (e) {
      const m = notice();
      m.error(e);
      put(box, m.el);
    }
  }

  const activity = (rows) => table('Department activity', [
    ['When', (r) => fmtTime(r.created_at_ms)],
    ['Patient', (r) => r.patient_id],
    ['Doctor', (r) => r.doctor_id],
    ['Prescription', (r) => (r.has_prescription ? (r.dispensed ? badge('Dispensed', 'green') : badge('Open', 'amber')) : '—')],
    ['Block', (r) => `#${r.block_height}`],
    ['Record', (r) => h('span', { class: 'font-mono text-xs' }, r.record_id)],
  ], rows);
  activity.pick = (d) => d.records;

  const audit = (rows) => table('Who read records', [
    ['When', (a) => fmtTime(a.at_ms)],
    ['Reader', (a) => `${a.reader_id} (${ROLE_LABEL[a.reader_role] || a.reader_role})`],
    ['Patient', (a) => a.patient_id],
    ['Action', (a) => ACTION_LABEL[a.action] || a.action],
    ['Reason', (a) => (a.reason === 'break-glass' ? badge('Break-glass', 'amber') : a.reason)],
    ['Block', (a) => `#${a.block_height}`],
  ], rows);

  const breakGlass = (rows) => table('Break-glass events', [
    ['When', (b) => fmtTime(b.at_ms)],
    ['Doctor', (b) => b.doctor_id],
    ['Patient', (b) => b.patient_id],
    ['Reason', (b) => b.reason],
    ['Until', (b) => fmtTime(b.until_ms)],
    ['Block', (b) => `#${b.block_height}`],
  ], rows);

  main.append(
    pageTitle(`Department: ${session.department || ''}`, session.display_name),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6 lg:col-span-2' },
        card('Staff and patients', filter, usersMsg.el, usersBox),
        card('Activity', h('p', { class: 'mb-3 text-sm text-slate-600' }, 'Records added in this department (who, for whom, when; no clinical content).'), activityBox)),
      h('div', { class: 'space-y-6' },
        card('Register a person', regForm))),
    h('div', { class: 'mt-6 grid grid-cols-1 gap-6 xl:grid-cols-2' },
      card('Break-glass events', bgBox),
      card('Who read records', auditBox)));

  loadUsers();
  fill(activityBox, '/api/department/activity?limit=100', activity, 'No records in this department yet.');
  fill(bgBox, '/api/break_glass?limit=100', breakGlass, 'No break-glass events.');
  fill(auditBox, '/api/audit?limit=100', audit, 'No reads recorded.');
}
