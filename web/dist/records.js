// @ts-check
// Why this file exists: a patient's records are shown the same way to the patient and to
// the doctor treating them: a timeline, newest first, each entry with its medication
// lines and the block that holds it on the ledger.

import { h, badge, fmtTime, medicationTable, shortHash } from './ui.js';

/** @typedef {import('./api.js').ChainRecord} ChainRecord */

/**
 * The records, newest first; a record that a later one corrects is marked.
 * @param {ChainRecord[]} records
 * @param {{ emptyText?: string }} [options]
 */
export function timeline(records, { emptyText = 'No records yet.' } = {}) {
  if (!records.length) {
    return h('p', { class: 'rounded-md border border-dashed border-slate-300 p-4 text-center text-slate-600' }, emptyText);
  }
  const sorted = [...records].sort((a, b) => b.created_at_ms - a.created_at_ms);
  const amended = new Set(sorted.map((r) => r.amends).filter(Boolean));
  return h('ol', { class: 'relative space-y-4 border-l-2 border-teal-200 pl-6', 'aria-label': 'Records, newest first' },
    sorted.map((r) => entry(r, amended.has(r.record_id))));
}

/**
 * @param {ChainRecord} r
 * @param {boolean} superseded a later record corrects this one
 */
function entry(r, superseded) {
  return h('li', { class: 'relative', 'data-record-id': r.record_id },
    h('span', { class: 'absolute -left-[33px] top-1.5 size-4 rounded-full border-2 border-white bg-teal-600 ring-2 ring-teal-200', 'aria-hidden': 'true' }),
    h('article', { class: 'rounded-lg border border-slate-200 bg-white p-4 shadow-sm' },
      h('div', { class: 'flex flex-wrap items-start justify-between gap-2' },
        h('div', {},
          h('p', { class: 'text-sm text-slate-600' }, h('time', { datetime: r.created_at || '' }, fmtTime(r.created_at_ms))),
          h('h3', { class: 'text-base font-semibold text-slate-900' }, r.diagnosis)),
        h('div', { class: 'flex flex-wrap gap-1' },
          superseded ? badge('Amended later', 'amber') : null,
          r.amends ? badge('Correction', 'blue') : null,
          hasPrescription(r) ? (r.dispensed ? badge('Dispensed', 'green') : badge('Not yet dispensed', 'slate')) : null)),
      h('p', { class: 'mt-1 text-sm text-slate-700' }, `By ${r.doctor_id} · ${r.department}`),
      r.medications && r.medications.length
        ? h('div', { class: 'mt-3' }, medicationTable(r.medications, `Medications for ${r.diagnosis}`))
        : null,
      r.prescription
        ? h('p', { class: 'mt-3 text-sm' }, h('span', { class: 'font-medium text-slate-700' }, 'Prescription: '), r.prescription)
        : null,
      r.notes ? h('p', { class: 'mt-2 whitespace-pre-line text-sm text-slate-800' }, r.notes) : null,
      r.amends ? h('p', { class: 'mt-2 text-sm text-slate-600' }, `Corrects record ${r.amends}`) : null,
      h('p', { class: 'mt-3 text-xs text-slate-600' },
        `Block #${r.block_height} · `, h('span', { class: 'font-mono', title: r.block_hash }, shortHash(r.block_hash)),
        ` · ${r.record_id}`)));
}

/** @param {ChainRecord} r */
const hasPrescription = (r) => (r.medications && r.medications.length > 0) || (r.prescription && r.prescription.trim() !== '');
