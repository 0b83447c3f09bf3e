// @ts-check
// Why this file exists: the pharmacy counter. Look up a prescription by the code the
// patient brings (or by patient ID, when the patient consented), see the medication lines
// only (never the diagnosis: the API does not send it), and record the dispense.

import { ApiError, post } from './api.js';
import {
  h, put, card, badge, button, busy, field, notice, loading, empty, medicationTable, pageTitle,
  fmtTime, markField, showErrors, onSubmit,
} from './ui.js';

/** @typedef {import('./api.js').PrescriptionView} PrescriptionView */

/**
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
export function render(main, { session }) {
  const results = h('div', { id: 'prescriptions', class: 'space-y-4', 'aria-live': 'polite' });
  const lookup = lookupCard(results, session.user_id);
  main.append(
    pageTitle('Dispensing', [session.display_name, session.user_id].filter(Boolean).join(' · ')),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', {}, lookup.el),
      h('div', { class: 'lg:col-span-2' }, results)));
  lookup.focus();
}

/**
 * The lookup form (by code or by patient ID); its answers go into `results`.
 * @param {HTMLElement} results
 * @param {string} me the pharmacy's user ID, shown on a dispense it records
 */
function lookupCard(results, me) {
  const msg = notice();
  const byCode = h('input', { type: 'radio', name: 'rx-by', id: 'rx-by-code', value: 'code', checked: true, class: 'size-4' });
  const byPatient = h('input', { type: 'radio', name: 'rx-by', id: 'rx-by-patient', value: 'patient', class: 'size-4' });
  const term = field({ label: 'Prescription code', id: 'rx-term', required: true, autocomplete: 'off', maxlength: 64, placeholder: 'ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2' });
  const termInput = /** @type {HTMLInputElement} */ (term.input);
  const labelText = /** @type {Text} */ (/** @type {HTMLLabelElement} */ (term.el.querySelector('label')).firstChild);
  const setMode = () => {
    labelText.textContent = byCode.checked ? 'Prescription code' : 'Patient ID';
    termInput.placeholder = byCode.checked ? 'ABCDE-FGHJK' : 'e.g. p001';
  };
  byCode.addEventListener('change', setMode);
  byPatient.addEventListener('change', setMode);
  const findBtn = button('Find prescription', { type: 'submit', id: 'rx-find' });
  const form = h('form', { class: 'space-y-4', novalidate: true, role: 'search' },
    h('fieldset', {},
      h('legend', { class: 'mb-2 text-sm font-medium text-slate-800' }, 'Find by'),
      h('div', { class: 'flex flex-wrap gap-x-6 gap-y-2' },
        h('div', { class: 'flex items-center gap-2' }, byCode, h('label', { for: 'rx-by-code', class: 'text-sm text-slate-800' }, 'Prescription code')),
        h('div', { class: 'flex items-center gap-2' }, byPatient, h('label', { for: 'rx-by-patient', class: 'text-sm text-slate-800' }, 'Patient ID (patient has consented)')))),
    term.el, findBtn);

  onSubmit(form, async () => {
    msg.clear();
    term.setError('');
    const value = termInput.value.trim();
    if (showErrors(value ? [] : [[term, byCode.checked ? 'Enter the code from the patient.' : 'Enter the patient ID.']])) return;
    const code = byCode.checked ? value.toUpperCase() : null;
    const body = code ? { code } : { patient_id: value };
    put(results, loading('Looking up…'));
    try {
      /** @type {import('./api.js').PrescriptionList} */
      const res = await busy(findBtn, () => post('/api/prescriptions/search', body), 'Looking up…');
      const list = res.prescriptions;
      put(results, list.length
        ? list.sort((a, b) => b.created_at_ms - a.created_at_ms).map((p) => prescriptionCard(p, code, me))
        : empty('This patient has no prescriptions.'));
    } catch (e) {
      results.replaceChildren();
      msg.error(e);
      // Both ways of looking up are the one input.
      markField(e, { code: term, patient_id: term });
    }
  });
  return {
    el: card('Find a prescription', form, msg.el,
      h('p', { class: 'mt-4 text-sm text-slate-600' }, 'Each lookup is recorded in the patient’s audit trail.')),
    focus: () => termInput.focus(),
  };
}

/**
 * One prescription: its medication lines and instructions, and whether it was dispensed
 * (with the button that records it, when not).
 * @param {PrescriptionView} p
 * @param {string | null} code the code it was looked up by; the dispense must give it too
 * @param {string} me
 */
function prescriptionCard(p, code, me) {
  const msg = notice();
  const status = h('div', { class: 'mt-4 flex flex-wrap items-center gap-3', 'data-status': '' });
  const titleId = `rx-${p.record_id}`;

  /** @param {import('./api.js').DispenseView} d */
  function showDispensed(d) {
    put(status, badge('Already dispensed', 'green'),
      h('p', { class: 'text-sm text-slate-700' },
        `Dispensed ${fmtTime(d.at_ms)} by ${d.pharmacy_id} (block #${d.block_height}).`));
  }

  if (p.dispensed) {
    showDispensed(p.dispensed);
  } else {
    const go = button('Record dispense', { id: `dispense-${p.record_id}`, ariaLabel: `Record dispense of the prescription from ${fmtTime(p.created_at_ms)}` });
    go.addEventListener('click', async () => {
      msg.clear();
      try {
        /** @type {import('./api.js').DispenseResponse} */
        const r = await busy(go, () => post(`/api/prescriptions/${encodeURIComponent(p.record_id)}/dispense`, code ? { code } : {}), 'Recording…');
        showDispensed({ pharmacy_id: me, at_ms: Date.now(), block_height: r.block_height });
        msg.show('success', `Dispense recorded in block #${r.block_height}.`);
      } catch (e) {
        msg.error(e);
        if (e instanceof ApiError && e.status === 409) put(status, badge('Already dispensed', 'green'));
      }
    });
    put(status, badge('Not dispensed', 'amber'), go);
  }

  return h('article', { class: 'rounded-lg border border-slate-200 bg-white p-5 shadow-sm', 'aria-labelledby': titleId, 'data-record-id': p.record_id },
    h('div', { class: 'flex flex-wrap items-baseline justify-between gap-2' },
      h('h2', { id: titleId, class: 'text-lg font-semibold text-slate-900' }, `Prescription for patient ${p.patient_id}`),
      h('p', { class: 'text-sm text-slate-600' }, `Prescribed by ${p.doctor_id} on ${fmtTime(p.created_at_ms)}`)),
    h('div', { class: 'mt-3' },
      medicationTable(p.medications, 'Medication lines') || h('p', { class: 'text-sm text-slate-600' }, 'No structured medication lines.')),
    p.prescription
      ? h('p', { class: 'mt-3 text-sm' }, h('span', { class: 'font-medium text-slate-700' }, 'Instructions: '), p.prescription)
      : null,
    h('p', { class: 'mt-2 text-xs text-slate-600' }, `Record ${p.record_id} · block #${p.block_height}`),
    status, msg.el);
}
