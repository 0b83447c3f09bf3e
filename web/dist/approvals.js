// @ts-check
// Why this file exists: co-signed actions from a department administrator's side. Some
// changes of an organisation take two people (today: adding or removing a department
// administrator takes the organisation's operator and another administrator), so they
// are proposals on the ledger that execute when the last signature they need arrives.
// This card lists what waits, lets the administrator sign (with a fresh two-step code
// where set up) and propose a new administrator.

import { ApiError, get, post } from './api.js';
import { h, put, card, badge, button, busy, field, notice, loading, empty, fmtTime, markField, showErrors, onSubmit } from './ui.js';
import { codeField, normaliseCode } from './mfa.js';

/**
 * @typedef {object} Proposal
 * @property {string} proposal_id
 * @property {string} kind
 * @property {{ kind: string, user_id?: string, department?: string, display_name?: string, patient?: string, reason?: string, duration_ms?: number }} action
 * @property {string} proposer
 * @property {number} created_ms
 * @property {number} expires_ms
 * @property {number} block_height
 * @property {string[]} approvals
 * @property {boolean} may_approve
 * @property {string} waiting_for
 * @property {string} [reason] an erasure or break-glass request's reason, opened by this node
 */

/** @typedef {{ proposal_id: string, executed: boolean, block_height: number }} ProposalDone a co-signed administrator change */

/** @param {string} who an approver id as the ledger keeps it */
const approverName = (who) => (who === '@operator' ? 'the operator' : who);

/** @param {Proposal} p */
function describe(p) {
  if (p.action.kind === 'register_administrator') {
    return `Add ${p.action.display_name || p.action.user_id} (${p.action.user_id}) as administrator of ${p.action.department}`;
  }
  if (p.action.kind === 'open_break_glass') {
    return `Emergency access by ${p.proposer} to patient ${p.action.patient} for ${Math.round((p.action.duration_ms || 0) / 60000)} minutes, beyond their daily limit: “${p.reason || p.action.reason || ''}”`;
  }
  if (p.action.kind === 'erase_patient') {
    return `Erase all data of patient ${p.action.patient}, at their request${p.reason ? `: “${p.reason}”` : ''}`;
  }
  return `Deactivate administrator ${p.action.user_id}`;
}

/** @param {Proposal} p the path that signs it */
const approvePath = (p) => (p.action.kind === 'erase_patient'
  ? `/api/erasure/${encodeURIComponent(p.proposal_id)}/approve`
  : `/api/proposals/${encodeURIComponent(p.proposal_id)}/approve`);

/**
 * The approvals card: what waits for the caller's signature, and (for a department
 * administrator) a form to propose a new administrator.
 * @param {{ propose?: boolean, intro?: string }} [opts]
 */
export function approvalsCard({ propose = true, intro } = {}) {
  const msg = notice();
  const box = h('div', { id: 'proposals', 'aria-live': 'polite' }, loading());

  async function load() {
    try {
      /** @type {{ proposals: Proposal[] }} */
      const r = await get('/api/proposals');
      put(box, r.proposals.length
        ? h('ul', { class: 'divide-y divide-slate-200' }, r.proposals.map((p) => item(p)))
        : empty('Nothing waits for a signature.'));
    } catch (e) {
      put(box);
      msg.error(e);
    }
  }

  /** @param {Proposal} p */
  function item(p) {
    const rowMsg = notice();
    const signed = h('p', { class: 'text-xs text-slate-600' },
      `Signed by ${p.approvals.map(approverName).join(', ')} · expires ${fmtTime(p.expires_ms)} · waiting for ${p.waiting_for}`);
    const li = h('li', { class: 'space-y-2 py-3', 'data-proposal-id': p.proposal_id },
      h('p', { class: 'text-sm font-medium text-slate-900' }, describe(p)), signed);
    if (!p.may_approve) {
      li.append(badge('You have signed', 'slate'));
      return li;
    }
    const totp = codeField(`approve-totp-${p.proposal_id}`, 'A fresh code (step-up), if two-step sign-in is set up.', false);
    const sign = button('Approve', { type: 'submit', id: `approve-${p.proposal_id}` });
    const form = h('form', { class: 'space-y-2', novalidate: true }, totp.el, sign, rowMsg.el);
    onSubmit(form, async () => {
      rowMsg.clear();
      totp.setError('');
      const code = normaliseCode(totp.input.value);
      try {
        /** @type {{ executed?: boolean, erased?: boolean, block_height: number }} */
        const r = await busy(sign, () => post(approvePath(p), code ? { totp: code } : {}), 'Signing on the ledger…');
        msg.show('success', (r.executed || r.erased)
          ? `${describe(p)}: done (block #${r.block_height}).`
          : `Signed (block #${r.block_height}); it still waits for ${p.waiting_for}.`);
        load();
      } catch (e) {
        if (e instanceof ApiError && (e.code === 'step_up_required' || e.code === 'step_up_failed')) {
          totp.setError(e.code === 'step_up_failed' ? 'That code is wrong, expired or already used.' : 'This approval needs a fresh code from your authenticator app.');
          totp.input.focus();
        } else rowMsg.error(e);
      }
    });
    li.append(form);
    return li;
  }

  const el = card('Approvals',
    h('p', { class: 'mb-3 text-sm text-slate-700' }, intro
      || 'Changes that take two people: adding or removing a department administrator needs the organisation’s operator and another administrator; a patient’s request to erase their data, or a doctor’s emergency access beyond the daily limit, needs the department’s approval. Each signature is a ledger transaction.'),
    msg.el, box, propose ? proposeForm(load) : null);
  return { el, load };
}

/**
 * Propose a new department administrator of this organisation (the operator signs the
 * second half with `medchain user approve`).
 * @param {() => void} onProposed
 */
function proposeForm(onProposed) {
  const msg = notice();
  const uid = field({ label: 'User ID', id: 'propose-user-id', required: true, autocomplete: 'off', maxlength: 64, placeholder: 'e.g. dep-radiology' });
  const name = field({ label: 'Name', id: 'propose-name', required: true, autocomplete: 'off', maxlength: 100, placeholder: 'e.g. Radiology office' });
  const dept = field({ label: 'Department', id: 'propose-department', required: true, autocomplete: 'off', maxlength: 64, placeholder: 'e.g. radiology' });
  const totp = codeField('propose-totp', 'A fresh code (step-up), if two-step sign-in is set up.', false);
  const submit = button('Propose', { type: 'submit', variant: 'secondary', id: 'propose-submit' });
  const form = h('form', { class: 'mt-4 space-y-3 border-t border-slate-200 pt-4', novalidate: true, id: 'propose-admin' },
    h('h3', { class: 'text-sm font-semibold text-slate-900' }, 'Propose a new administrator'),
    uid.el, name.el, dept.el, totp.el, submit, msg.el);
  onSubmit(form, async () => {
    msg.clear();
    for (const f of [uid, name, dept, totp]) f.setError('');
    const action = {
      kind: 'register_administrator',
      user_id: uid.input.value.trim(),
      display_name: name.input.value.trim(),
      department: dept.input.value.trim(),
    };
    /** @type {Array<[import('./ui.js').Field, string]>} */
    const errors = [];
    if (!action.user_id) errors.push([uid, 'Enter the new administrator’s user ID.']);
    if (!action.display_name) errors.push([name, 'Enter a name.']);
    if (!action.department) errors.push([dept, 'Enter the department.']);
    if (showErrors(errors)) return;
    const code = normaliseCode(totp.input.value);
    try {
      /** @type {ProposalDone} */
      const r = await busy(submit, () => post('/api/proposals', code ? { action, totp: code } : { action }), 'Recording on the ledger…');
      msg.show('success', `Proposed (block #${r.block_height}). The operator signs it with: medchain user approve --proposal-id ${r.proposal_id}`);
      form.reset();
      onProposed();
    } catch (e) {
      msg.error(e);
      markField(e, { user_id: uid, display_name: name, department: dept, totp });
    }
  });
  return form;
}
