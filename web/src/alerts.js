// @ts-check
// Why this file exists: the access monitor's alerts where people act on them. Every read
// of a patient's data is either explained by a ledger fact (a record the reader wrote, a
// consent, an open break-glass, ...) or flagged by a named rule; the patient's department
// sees the flagged reads of its patients with the rule's sentence and reviews each one on
// the ledger (justified or a violation, with a note), and the patient sees the flags on
// reads of their own data ("Who read my data", patient.js).

import { ApiError, get, post } from './api.js';
import { h, put, card, badge, button, busy, field, notice, loading, empty, facts, fmtTime, markField, showErrors, onSubmit } from './ui.js';

/**
 * @typedef {object} AccessAlert
 * @property {string} alert_id
 * @property {string} user_id
 * @property {string} patient_id
 * @property {string} rule
 * @property {string} explanation
 * @property {number} at_ms
 * @property {number} block_height
 * @property {{ outcome: string, note: string, reviewer: string, at_ms: number } | null} review
 */

/**
 * @typedef {object} ReaderDayScore
 * @property {string} user_id
 * @property {number} day days since the Unix epoch
 * @property {number} score 0 to 1
 * @property {Array<{ feature: string, value: number, typical: number }>} drivers
 */

/** @typedef {{ alerts: AccessAlert[], reader_scores: ReaderDayScore[], next_cursor: string | null, more: boolean, caught_up: boolean }} AlertsResponse */

/** The rules' names as a privacy officer reads them (crates/monitor/src/rules.rs). */
export const RULE_LABEL = /** @type {Record<string, string>} */ ({
  no_treatment_relationship: 'No treatment relationship',
  volume_above_baseline: 'Far more reads than usual',
  unusual_hours: 'Outside usual hours',
  same_surname: 'Same surname',
  co_worker: 'Co-worker',
  repeated_break_glass: 'Repeated break-glass',
  many_patients_short_window: 'Many patients in a short time',
});

/** @returns {Promise<AlertsResponse>} */
export const fetchAlerts = () => get('/api/alerts');

/** The ledger's bound on a review note (REVIEW_NOTE_MAX_CHARS). */
const NOTE_MAX = 1000;

/** The department's card: flagged reads to review, and the reviewed ones. */
export function accessAlertsCard() {
  const msg = notice();
  const box = h('div', { id: 'access-alerts', 'aria-live': 'polite' }, loading());

  async function load() {
    try {
      const r = await fetchAlerts();
      const open = r.alerts.filter((a) => !a.review);
      const done = r.alerts.filter((a) => a.review);
      put(box,
        r.caught_up ? null : h('p', { class: 'mb-2 text-sm text-amber-900' }, 'The monitor is still reading the chain; more alerts may follow.'),
        open.length
          ? h('ul', { class: 'space-y-4', 'aria-label': 'Access alerts to review' }, open.map(item))
          : empty('No flagged reads to review: every read of this department’s patients’ data is explained by a ledger fact or has been reviewed.'),
        done.length
          ? h('details', { class: 'mt-4 text-sm', id: 'access-alerts-reviewed' },
            h('summary', { class: 'cursor-pointer font-medium text-slate-800' }, `Reviewed (${done.length})`),
            h('ul', { class: 'mt-2 divide-y divide-slate-200' }, done.map((a) => h('li', { class: 'py-2', 'data-alert-id': a.alert_id },
              h('p', {}, `${RULE_LABEL[a.rule] || a.rule}: ${a.user_id} on ${a.patient_id} · `,
                badge(a.review && a.review.outcome === 'violation' ? 'Violation' : 'Justified', a.review && a.review.outcome === 'violation' ? 'red' : 'green')),
              h('p', { class: 'text-slate-600' }, `${a.review ? a.review.reviewer : ''}: ${a.review ? a.review.note : ''}`)))))
          : null,
        r.reader_scores && r.reader_scores.length ? unusualDays(r.reader_scores) : null);
    } catch (e) {
      put(box);
      msg.error(e);
    }
  }

  /** The learned score's most unusual days: advisory, with what made each one unusual. */
  function unusualDays(/** @type {ReaderDayScore[]} */ list) {
    const fmt = (/** @type {number} */ x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
    return h('div', { class: 'mt-4 rounded-md border border-slate-200 p-3 text-sm', id: 'reader-scores' },
      h('p', { class: 'font-medium text-slate-900' }, 'Unusual days (learned score, advisory)'),
      h('p', { class: 'text-slate-600' }, 'Days of your staff that look least like your organisation’s usual days. Not an alert: a hint of where to look.'),
      h('ul', { class: 'mt-2 space-y-1' }, list.map((d) => h('li', {},
        `${d.user_id}, ${new Date(d.day * 86_400_000).toISOString().slice(0, 10)}: ${d.score.toFixed(2)} · `,
        d.drivers.map((x) => `${x.feature.replaceAll('_', ' ')} ${fmt(x.value)} (typical ${fmt(x.typical)})`).join(', ')))));
  }

  /** @param {AccessAlert} a */
  function item(a) {
    const itemMsg = notice();
    const outcome = field({ label: 'Finding', id: `alert-outcome-${a.alert_id}`, type: 'select', options: [['justified', 'Justified'], ['violation', 'Violation']] });
    const note = field({
      label: 'Review note', id: `alert-note-${a.alert_id}`, type: 'textarea', rows: 2, required: true, maxlength: NOTE_MAX,
      hint: 'What you checked and concluded. Written to the ledger; the patient sees the finding.',
    });
    const submit = button('Record review', { type: 'submit', id: `alert-review-${a.alert_id}`, ariaLabel: `Record review of the alert on ${a.user_id} reading ${a.patient_id}` });
    const form = h('form', { class: 'mt-3 space-y-3', novalidate: true }, outcome.el, note.el, submit, itemMsg.el);
    const li = h('li', { class: 'rounded-md border border-red-200 bg-red-50/40 p-4', 'data-alert-id': a.alert_id },
      h('p', { class: 'font-medium text-slate-900' }, RULE_LABEL[a.rule] || a.rule),
      h('p', { class: 'mt-1 text-sm text-slate-800' }, a.explanation),
      facts([
        ['Reader', a.user_id],
        ['Patient', a.patient_id],
        ['When', fmtTime(a.at_ms)],
        ['Block', `#${a.block_height}`],
      ]),
      form);
    onSubmit(form, async () => {
      msg.clear();
      itemMsg.clear();
      note.setError('');
      const text = note.input.value.trim();
      if (showErrors(text ? [] : [[note, 'Write what you checked before recording the review.']])) return;
      try {
        /** @type {import('./api.js').Done} */
        const r = await busy(submit, () => post(`/api/alerts/${encodeURIComponent(a.alert_id)}/review`, { outcome: outcome.input.value, note: text }), 'Recording on the ledger…');
        msg.show('success', `Alert on ${a.user_id} reading ${a.patient_id} reviewed as ${outcome.input.value} (block #${r.block_height}).`);
        load();
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) {
          msg.error(e);
          load();
          return;
        }
        itemMsg.error(e);
        markField(e, { note });
      }
    });
    return li;
  }

  return {
    el: card('Access alerts',
      h('p', { class: 'mb-3 text-sm text-slate-600' },
        'Reads of your patients’ data that no ledger fact explains (no record written, no personal consent, no emergency access), flagged by a named rule. Check each one and record what you found.'),
      msg.el, box),
    load,
  };
}
