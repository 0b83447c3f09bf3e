// @ts-check
// Why this file exists: the doctor's workspace. Find a patient, see whether (and why) the
// records may be read, read them, add a record with structured medication lines, use a
// one-time code or break-glass when there is no consent, and validate a block on demand.
// A doctor may open only a few emergency accesses in any 24 hours; one beyond needs a
// second approver, another doctor or the patient's department: this screen says so when
// the limit refuses a break-glass, and carries the approval form, which the department's
// screen shows too (`approveCard`).

import { ApiError, get, getWholeChain, post, query } from './api.js';
import {
  h, put, card, actionCard, badge, button, busy, field, notice, errorNotice, loading, empty,
  facts, mono, replicas, pageTitle, fmtTime, fmtNumber, markField, showErrors, onSubmit,
} from './ui.js';
import { timeline } from './records.js';
import { codeField, normaliseCode } from './mfa.js';
import { approvalsCard } from './approvals.js';

/** @typedef {import('./api.js').PatientSummary} PatientSummary */
/** @typedef {import('./api.js').AccessStatus} AccessStatus */
/** @typedef {import('./api.js').Medication} Medication */
/** @typedef {import('./ui.js').Field} Field */

/**
 * What the parts of the screen share: which patient is open (a newer opening wins over a
 * slower older one), where the patient is shown, and the search results, whose entries
 * mark the open patient.
 * @typedef {object} DoctorView
 * @property {string} doctorId the signed-in doctor
 * @property {string | null} current the open patient's id
 * @property {HTMLElement} panel
 * @property {HTMLElement} results
 */

/**
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
export function render(main, { session }) {
  /** @type {DoctorView} */
  const view = {
    doctorId: session.user_id,
    current: null,
    panel: h('div', { id: 'patient-panel', class: 'space-y-6' },
      card('No patient open', empty('Find a patient on the left to see their records and add a new one.'))),
    results: h('div', { id: 'patient-results', class: 'mt-4', 'aria-live': 'polite' }),
  };
  const search = patientSearch(view);
  const approvals = approvalsCard({
    propose: false,
    intro: 'Emergency accesses your colleagues asked for beyond their daily limit: one signature of another doctor (or the patient’s department) opens each. Sign only an emergency you can vouch for.',
  });
  main.append(
    pageTitle('Patients', [session.display_name, session.department].filter(Boolean).join(' · ')),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6' }, search.el, validateBlockCard(),
        approvals.el,
        approveCard({
          self: session.user_id,
          intro: 'A colleague who reached the daily limit of emergency accesses needs a second approver for one more. Approve only an emergency you can vouch for: your approval is written to the ledger.',
        })),
      h('div', { class: 'lg:col-span-2' }, view.panel)));
  search.find();
  approvals.load();
}

// ---- find a patient ---------------------------------------------------------------

/**
 * The search card; `find` runs the search (an empty one lists the doctor's patients).
 * @param {DoctorView} view
 */
function patientSearch(view) {
  const search = field({ label: 'Find a patient', id: 'patient-search', hint: 'Name or patient ID', autocomplete: 'off' });
  const searchBtn = button('Search', { type: 'submit', id: 'patient-search-submit' });
  const searchMsg = notice();
  const form = h('form', { class: 'flex items-start gap-2', role: 'search' },
    h('div', { class: 'flex-1' }, search.el), h('div', { class: 'pt-6' }, searchBtn));

  async function find() {
    searchMsg.clear();
    search.setError('');
    const text = search.input.value.trim();
    put(view.results, loading('Searching…'));
    try {
      /** @type {PatientSummary[]} */
      const list = await busy(searchBtn, () => get(`/api/patients${query({ search: text, limit: 50 })}`), 'Searching…');
      put(view.results, patientList(view, list, text));
    } catch (e) {
      view.results.replaceChildren();
      searchMsg.error(e);
      markField(e, { search });
    }
  }
  onSubmit(form, find);
  return { el: card('Find a patient', form, searchMsg.el, view.results), find };
}

/**
 * The search's answer; a text that could be a patient ID can be opened as one (patients
 * of other departments are not listed until they consent).
 * @param {DoctorView} view
 * @param {PatientSummary[]} list
 * @param {string} text
 */
function patientList(view, list, text) {
  const items = list.map((p) => h('li', {},
    h('button', {
      type: 'button',
      class: 'flex w-full items-center justify-between gap-3 rounded-md px-3 py-2 text-left hover:bg-slate-50 aria-[current=true]:bg-teal-50 aria-[current=true]:ring-1 aria-[current=true]:ring-teal-300',
      'aria-current': p.user_id === view.current ? 'true' : null,
      'data-patient-id': p.user_id,
      onclick: () => openPatient(view, p.user_id, p),
    },
    h('span', {},
      h('span', { class: 'block font-medium text-slate-900' }, p.display_name),
      h('span', { class: 'block text-sm text-slate-600' }, `${p.user_id} · ${p.department}`)),
    p.break_glass ? badge('Emergency', 'amber') : p.consent ? badge('Consent', 'green') : badge('No consent', 'slate'))));
  const looksLikeId = /^[A-Za-z0-9._-]{1,64}$/.test(text);
  return h('div', {},
    items.length
      ? h('ul', { class: 'divide-y divide-slate-100', 'aria-label': 'Patients' }, items)
      : empty(text ? `No patient of your department or with your consent matches “${text}”.` : 'No patients yet.'),
    looksLikeId && list.length === 0
      ? h('p', { class: 'mt-3 text-sm' },
        button(`Open patient ID “${text}”`, { variant: 'link', onClick: () => openPatient(view, text, null) }))
      : null);
}

// ---- validate block ---------------------------------------------------------------

function validateBlockCard() {
  const validateBtn = button('Validate block', { id: 'validate-block' });
  const validateOut = h('div', { id: 'validate-result', 'aria-live': 'polite' });
  const validateMsg = notice();
  validateBtn.addEventListener('click', async () => {
    validateMsg.clear();
    try {
      /** @type {import('./api.js').ValidatedBlock} */
      const b = await busy(validateBtn, () => post('/api/validate_block'), 'Waiting for the replicas…');
      put(validateOut, h('div', { class: 'mt-4 rounded-md border border-emerald-200 bg-emerald-50 p-4' },
        h('p', { class: 'mb-3 font-semibold text-emerald-900', role: 'status' },
          `Block #${b.block_height} committed in ${fmtNumber(b.latency_ms, 1)} ms`),
        facts([
          ['Block height', String(b.block_height)],
          ['Latency', `${fmtNumber(b.latency_ms, 1)} ms`],
          ['Signed by', replicas(b.signers)],
          ['Proposer', `Replica ${b.proposer} (view ${b.view})`],
          ['Records in block', String(b.record_count)],
          ['Pending records committed', String(b.committed_pending)],
          ['Block hash', mono(b.block_hash)],
          ['Previous hash', mono(b.previous_hash)],
          ['Committed at', fmtTime(b.timestamp_ms)],
        ])));
    } catch (e) {
      validateMsg.error(e);
    }
  });
  return actionCard('Validate block',
    'Propose a block now and wait until the replicas commit it. Shows who signed it and how long it took.',
    validateBtn, validateMsg.el, validateOut);
}

// ---- the open patient -------------------------------------------------------------

/**
 * Open a patient: their access status, then their records (when the doctor may read
 * them) or the break-glass form, and the form for a new record.
 * @param {DoctorView} view
 * @param {string} pid
 * @param {PatientSummary | null} summary null when opened by ID
 * @param {string} [flash] a success message to show above the records
 */
async function openPatient(view, pid, summary, flash) {
  view.current = pid;
  for (const b of view.results.querySelectorAll('[data-patient-id]')) {
    if (b instanceof HTMLElement && b.dataset.patientId === pid) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
  put(view.panel, card('Patient', loading(`Opening ${pid}…`)));
  /** @type {AccessStatus} */
  let access;
  try {
    access = await get(`/api/patients/${encodeURIComponent(pid)}/access`);
  } catch (e) {
    put(view.panel, card('Patient', errorNotice(e)));
    return;
  }
  if (view.current !== pid) return;
  const now = Date.now();
  const bgUntil = access.break_glass_until_ms && access.break_glass_until_ms > now ? access.break_glass_until_ms : null;
  const canRead = access.consent || bgUntil;

  const recordsBox = h('div', { id: 'patient-records' });
  const sections = [patientHeader(pid, summary, access, bgUntil)];
  if (flash) {
    const m = notice();
    m.show('success', flash);
    sections.push(m.el);
  }
  if (canRead) {
    sections.push(card('Records', recordsBox));
    put(recordsBox, loading('Loading records (this read is recorded in the patient’s audit trail)…'));
  } else {
    sections.push(breakGlassCard(view, pid, summary));
  }
  sections.push(recordCard(pid, !access.consent, () => loadRecords(view, pid, recordsBox)));
  put(view.panel, sections);
  // Keyboard and screen-reader users land on the patient; small screens scroll to it.
  const title = /** @type {HTMLElement} */ (view.panel.querySelector('#patient-name'));
  title.focus({ preventScroll: true });
  if (window.innerWidth < 1024) title.scrollIntoView({ block: 'start' });
  if (canRead) loadRecords(view, pid, recordsBox);
}

/**
 * The patient's name, ID and whether the doctor may read their records, and why.
 * @param {string} pid
 * @param {PatientSummary | null} summary
 * @param {AccessStatus} access
 * @param {number | null} bgUntil the end of the doctor's emergency access, if running
 */
function patientHeader(pid, summary, access, bgUntil) {
  const status = h('div', { class: 'flex flex-wrap items-center gap-2', id: 'access-status' },
    access.consent ? badge('Consent on record', 'green') : badge('No consent', 'slate'),
    bgUntil ? badge(`Emergency access until ${fmtTime(bgUntil)}`, 'amber') : null);
  return h('section', { class: 'rounded-lg border border-slate-200 bg-white p-5 shadow-sm', 'aria-labelledby': 'patient-name' },
    h('div', { class: 'flex flex-wrap items-center justify-between gap-3' },
      h('div', {},
        h('h2', { id: 'patient-name', class: 'text-xl font-semibold text-slate-900 focus:outline-none', tabindex: '-1' }, summary ? summary.display_name : pid),
        h('p', { class: 'text-sm text-slate-600' }, `Patient ID ${pid}${summary ? ` · ${summary.department}` : ''}`)),
      status));
}

/**
 * Read the patient's records into `box` (each read is written to their audit trail).
 * @param {DoctorView} view
 * @param {string} pid
 * @param {HTMLElement} box
 */
async function loadRecords(view, pid, box) {
  if (!box.isConnected) return;
  try {
    const chain = await getWholeChain(pid);
    if (view.current !== pid) return;
    put(box,
      h('p', { class: 'mb-4 text-sm text-slate-600' },
        `Access: ${chain.access}. ${chain.records.length} record${chain.records.length === 1 ? '' : 's'}`
          + (chain.more ? ' shown; the chart has more than the screen reads at once (use the API or the FHIR export for the rest).' : '.')),
      timeline(chain.records, { emptyText: 'This patient has no records yet.' }));
  } catch (e) {
    put(box, errorNotice(e));
  }
}

// ---- break-glass ------------------------------------------------------------------

/** The ledger's minimum for a break-glass reason (BREAK_GLASS_REASON_MIN_CHARS). */
const REASON_MIN_CHARS = 10;

/** How long an approval stays usable (BREAK_GLASS_APPROVAL_TTL_MS in the ledger). */
const APPROVAL_VALID = 'an hour';

/**
 * Whether `e` is the refusal of a break-glass beyond the doctor's daily limit: the API's
 * pre-check answers 403 `break_glass_limit`; should the ledger itself refuse it (two
 * openings racing past the pre-check), it is a 403 `forbidden` with the same words
 * ("... in the last 24 hours (limit 3); another doctor or the patient's department must
 * approve this one").
 * @param {unknown} e
 * @returns {e is ApiError}
 */
export function isLimitRefusal(e) {
  return e instanceof ApiError && e.status === 403
    && (e.code === 'break_glass_limit' || /\(limit \d+\)|must approve/.test(e.message));
}

/**
 * What the doctor reads when the limit refused their break-glass: what happened, who can
 * unblock it and how, then the node's own words.
 * @param {ApiError} e
 * @param {string} doctorId
 * @param {string} patientId
 */
export function limitExplanation(e, doctorId, patientId) {
  return h('div', { id: 'bg-limit', class: 'space-y-2' },
    h('p', { class: 'font-semibold' }, 'Daily limit of emergency accesses reached'),
    h('p', {},
      'You have opened as many emergency accesses as a doctor may in 24 hours. This one needs a second approver: ',
      h('strong', {}, 'another doctor or the patient’s department'),
      ` must approve it in MedChain (“Approve emergency access beyond the limit”, doctor ${doctorId}, patient ${patientId}). `,
      `Their approval can be used once within ${APPROVAL_VALID}; then open emergency access here again.`),
    h('p', { class: 'text-xs opacity-80' }, `The node said: ${e.message}`));
}

/**
 * The second approver's form: which doctor, for which patient.
 * @param {{ self: string | null, intro: string }} options `self`: the signed-in doctor,
 *   who cannot approve their own access (null for a department)
 */
export function approveCard({ self, intro }) {
  const msg = notice();
  const doctor = field({ label: 'Doctor ID', id: 'bg-approve-doctor', required: true, autocomplete: 'off', maxlength: 64, placeholder: 'e.g. d002' });
  const patient = field({ label: 'Patient ID', id: 'bg-approve-patient', required: true, autocomplete: 'off', maxlength: 64, placeholder: 'e.g. p001' });
  const totp = codeField('bg-approve-totp', 'A fresh code (step-up), if two-step sign-in is set up.', false);
  const submit = button('Approve', { type: 'submit', id: 'bg-approve-submit' });
  const form = h('form', { class: 'space-y-4', novalidate: true, id: 'bg-approve-form' },
    h('p', { class: 'text-sm text-slate-700' }, intro),
    h('div', { class: 'grid grid-cols-1 gap-3 sm:grid-cols-2' }, doctor.el, patient.el),
    totp.el, submit, msg.el);
  onSubmit(form, async () => {
    msg.clear();
    doctor.setError('');
    patient.setError('');
    totp.setError('');
    const code = normaliseCode(totp.input.value);
    const body = { doctor_id: doctor.input.value.trim(), patient_id: patient.input.value.trim(), ...(code ? { totp: code } : {}) };
    /** @type {Array<[import('./ui.js').Field, string]>} */
    const errors = [];
    if (!body.doctor_id) errors.push([doctor, 'Enter the ID of the doctor who needs the access.']);
    else if (body.doctor_id === self) errors.push([doctor, 'You cannot approve your own emergency access: ask another doctor or the patient’s department.']);
    if (!body.patient_id) errors.push([patient, 'Enter the patient’s ID.']);
    if (showErrors(errors)) return;
    try {
      /** @type {import('./api.js').Done} */
      const r = await busy(submit, () => post('/api/break_glass/approve', body), 'Recording on the ledger…');
      msg.show('success', `Approved (block #${r.block_height}): doctor ${body.doctor_id} may open emergency access to patient ${body.patient_id} once, within ${APPROVAL_VALID}.`);
      form.reset();
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'step_up_required' || e.code === 'step_up_failed')) {
        totp.setError(e.code === 'step_up_failed' ? 'That code is wrong, expired or already used.' : 'This approval needs a fresh code from your authenticator app.');
        totp.input.focus();
      } else msg.error(e);
      markField(e, { doctor_id: doctor, patient_id: patient });
    }
  });
  return card('Approve emergency access beyond the limit', form);
}

/**
 * Shown instead of the records when there is no consent: emergency access, with a reason
 * and a confirmation, written to the ledger for the patient and the department to see.
 * @param {DoctorView} view
 * @param {string} pid
 * @param {PatientSummary | null} summary
 */
function breakGlassCard(view, pid, summary) {
  const msg = notice();
  const reason = field({ label: 'Reason for emergency access', id: 'bg-reason', type: 'textarea', rows: 2, required: true, maxlength: 500, hint: `At least ${REASON_MIN_CHARS} characters. Shown to the patient and to the department, which reviews every emergency access.` });
  const minutes = field({ label: 'Duration', id: 'bg-minutes', type: 'select', options: [['15', '15 minutes'], ['30', '30 minutes'], ['60', '60 minutes']], value: '60' });
  const ack = h('input', { id: 'bg-ack', type: 'checkbox', class: 'mt-1 size-4 rounded border-slate-400 text-red-700' });
  // Step-up: an enrolled doctor proves with a fresh code that it is them at the keyboard.
  const totp = codeField('bg-totp', 'A fresh code: emergency access needs proof that it is you at the keyboard. Leave empty if two-step sign-in is not set up.', false);
  const go = button('Open emergency access', { variant: 'danger', type: 'submit', id: 'bg-submit' });
  const form = h('form', { class: 'mt-4 space-y-4 rounded-md border border-red-200 bg-red-50/40 p-4', novalidate: true },
    h('h3', { class: 'font-semibold text-red-900' }, 'Break-glass (emergencies only)'),
    reason.el, minutes.el, totp.el,
    h('div', { class: 'flex items-start gap-2' }, ack,
      h('label', { for: 'bg-ack', class: 'text-sm text-slate-800' },
        'I need these records for an emergency. This access is written to the ledger and shown to the patient.')),
    h('p', { class: 'text-sm text-slate-600' },
      'Each doctor may open only a few emergency accesses in 24 hours; beyond that, another doctor or the patient’s department must approve first.'),
    go, msg.el);
  onSubmit(form, async () => {
    reason.setError('');
    minutes.setError('');
    msg.clear();
    const why = reason.input.value.trim();
    if (showErrors(why ? [] : [[reason, 'Give the reason for emergency access.']])) return;
    if (showErrors([...why].length >= REASON_MIN_CHARS ? [] : [[reason, `Give a reason of at least ${REASON_MIN_CHARS} characters.`]])) return;
    if (!ack.checked) {
      msg.show('error', 'Confirm that this is an emergency.');
      ack.focus();
      return;
    }
    try {
      const code = normaliseCode(totp.input.value);
      /** @type {import('./api.js').BreakGlassResponse} */
      const r = await busy(go, () => post('/api/break_glass', {
        patient_id: pid, reason: why, minutes: Number(minutes.input.value), ...(code ? { totp: code } : {}),
      }), 'Recording on the ledger…');
      openPatient(view, pid, summary, `Emergency access granted until ${fmtTime(r.until_ms)} (block #${r.block_height}). The patient and the department can see this.`);
    } catch (e) {
      if (isLimitRefusal(e)) {
        msg.show('error', limitExplanation(e, view.doctorId, pid));
        msg.el.append(askCoSignature());
      }
      else if (e instanceof ApiError && (e.code === 'step_up_required' || e.code === 'step_up_failed')) {
        totp.setError(e.code === 'step_up_failed'
          ? 'That code is wrong, expired or already used. Enter the code the app shows now.'
          : /set up two-step/.test(e.message)
            ? 'Your organisation requires two-step sign-in for emergency access: set it up first (header, "Two-step sign-in").'
            : 'Emergency access needs a fresh code from your authenticator app.');
        totp.input.focus();
      } else msg.error(e);
      markField(e, { reason, minutes, totp });
    }
  });
  /** Beyond the limit: ask a colleague or the department to co-sign this very access. */
  function askCoSignature() {
    const ask = button('Ask a colleague or the department to co-sign', { variant: 'secondary', id: 'bg-request' });
    ask.addEventListener('click', async () => {
      const code = normaliseCode(totp.input.value);
      try {
        /** @type {{ request_id: string, block_height: number }} */
        const r = await busy(ask, () => post('/api/break_glass/request', {
          patient_id: pid, reason: reason.input.value.trim(), minutes: Number(minutes.input.value), ...(code ? { totp: code } : {}),
        }), 'Recording the request on the ledger…');
        msg.show('success', `Request ${r.request_id} recorded (block #${r.block_height}). It opens as soon as another doctor of your organisation or the patient’s department signs it in their Approvals list.`);
      } catch (e) {
        if (e instanceof ApiError && (e.code === 'step_up_required' || e.code === 'step_up_failed')) {
          totp.setError('Enter a fresh code from your authenticator app for the request.');
          totp.input.focus();
        } else msg.error(e);
      }
    });
    return h('div', { class: 'mt-2' }, ask);
  }
  return card('No consent',
    h('p', { class: 'text-slate-700' },
      'This patient has not given you consent, so their records stay hidden. Ask the patient to grant you access in their MedChain account, or for a one-time code to add a record below.'),
    form);
}

// ---- a new record -----------------------------------------------------------------

/**
 * The form for a new record. Without consent it asks for the patient's one-time code;
 * `onSaved` reloads the records (which that doctor cannot read without consent).
 * @param {string} pid
 * @param {boolean} needsCode
 * @param {() => void} onSaved
 */
function recordCard(pid, needsCode, onSaved) {
  const msg = notice();
  const diagnosis = field({ label: 'Diagnosis', id: 'rec-diagnosis', type: 'textarea', rows: 2, required: true, maxlength: 2000 });
  const prescription = field({ label: 'Prescription instructions', id: 'rec-prescription', type: 'textarea', rows: 2, maxlength: 2000, hint: 'Optional free text for the pharmacy (the medication lines above are preferred).' });
  const notes = field({ label: 'Clinical notes', id: 'rec-notes', type: 'textarea', rows: 4, maxlength: 10000 });
  const code = needsCode
    ? field({ label: 'One-time consent code', id: 'rec-consent-code', autocomplete: 'off', required: true, maxlength: 32, placeholder: 'ABCDE-FGHJK', hint: 'The patient generates this code in their account; it allows one record.' })
    : null;
  const meds = medicationLines();
  const save = button('Add record', { type: 'submit', id: 'rec-submit' });
  const form = h('form', { class: 'space-y-5', novalidate: true, id: 'add-record-form' },
    diagnosis.el, meds.el, prescription.el, notes.el, code ? code.el : null,
    h('div', { class: 'flex items-center gap-3' }, save, h('p', { class: 'text-sm text-slate-600' }, 'Saved records are committed to the ledger and cannot be deleted; corrections are added as new records.')),
    msg.el);
  /**
   * The request's text fields, by the names the API gives in an error's `field`.
   * @type {Record<string, Field | null>}
   */
  const textFields = { diagnosis, prescription, notes, consent_code: code };

  onSubmit(form, async () => {
    msg.clear();
    for (const f of Object.values(textFields)) if (f) f.setError('');
    meds.clearErrors();
    /** @type {Array<[Field, string]>} */
    const errors = [];
    const diag = diagnosis.input.value.trim();
    if (!diag) errors.push([diagnosis, 'Enter the diagnosis.']);
    if (code && !code.input.value.trim()) errors.push([code, 'Enter the patient’s one-time code, or ask them for consent.']);
    const lines = meds.values(errors);
    if (showErrors(errors, msg)) return;
    const body = {
      patient_id: pid,
      diagnosis: diag,
      prescription: prescription.input.value.trim(),
      notes: notes.input.value.trim(),
      medications: lines,
      ...(code ? { consent_code: code.input.value.trim().toUpperCase() } : {}),
    };
    try {
      /** @type {import('./api.js').AddRecordResponse | import('./api.js').PendingResponse} */
      const res = await busy(save, () => post('/api/add_record', body), 'Committing to the ledger…');
      form.reset();
      meds.reset();
      msg.show('success', ...recordSaved(res));
      if (!needsCode) onSaved();
    } catch (e) {
      msg.error(e);
      markField(e, (name) => (Object.hasOwn(textFields, name) ? textFields[name] : meds.fieldNamed(name)));
    }
  });
  return card(`Add a record for ${pid}`, form);
}

/**
 * Where the new record went, and the prescription code, which the API shows only once.
 * @param {import('./api.js').AddRecordResponse | import('./api.js').PendingResponse} res
 */
function recordSaved(res) {
  const saved = 'block_height' in res
    ? h('p', { class: 'font-semibold' }, `Record saved in block #${res.block_height}.`, ' ',
      h('span', { class: 'font-normal' }, 'Block hash '), h('span', { class: 'font-mono text-xs font-normal', title: res.block_hash }, res.block_hash.slice(0, 16), '…'))
    : h('p', { class: 'font-semibold' }, 'Record queued. It is committed when a block is validated.');
  const rx = res.prescription_code
    ? h('div', { id: 'rx-code-box', class: 'mt-3 rounded-md border-2 border-teal-600 bg-white p-4 text-slate-900' },
      h('p', { class: 'text-lg' }, 'Prescription code: ',
        h('strong', { id: 'rx-code', class: 'font-mono text-xl tracking-wider break-all' }, res.prescription_code),
        ' — give this to the patient'),
      h('p', { class: 'mt-1 text-sm text-slate-700' }, 'Any pharmacy the patient gives this code to can read and dispense this prescription, and nothing else of the record. It is shown only now and stored nowhere in clear.'))
    : null;
  return [saved, rx];
}

// ---- medication lines -------------------------------------------------------------

/** @type {Array<[keyof Medication, string, string]>} [key, label, placeholder] */
const MED_FIELDS = [
  ['name', 'Medication', 'e.g. Amlodipine'],
  ['dose', 'Dose', 'e.g. 5 mg'],
  ['route', 'Route', 'e.g. oral'],
  ['frequency', 'Frequency', 'e.g. once daily'],
  ['duration', 'Duration', 'e.g. 30 days'],
  ['quantity', 'Quantity', 'e.g. 30'],
];

const ROUTES = ['oral', 'sublingual', 'intravenous', 'intramuscular', 'subcutaneous', 'topical', 'inhaled', 'rectal', 'ophthalmic'];

/**
 * @typedef {object} MedicationLine
 * @property {Record<keyof Medication, Field>} fields
 * @property {HTMLFieldSetElement} el
 * @property {HTMLLegendElement} legend numbered by the list
 * @property {HTMLButtonElement} remove
 */

/**
 * One medication line, its inputs numbered `n` (ids med-n-name, ...), which stays its
 * own when lines above it are removed.
 * @param {number} n
 * @param {(line: MedicationLine) => void} onRemove
 * @returns {MedicationLine}
 */
function medicationLine(n, onRemove) {
  const fields = /** @type {Record<keyof Medication, Field>} */ ({});
  for (const [key, label, ph] of MED_FIELDS) {
    fields[key] = field({
      label, id: `med-${n}-${key}`, placeholder: ph, maxlength: key === 'name' ? 200 : 100,
      list: key === 'route' ? 'med-routes' : undefined, autocomplete: 'off',
    });
  }
  const legend = h('legend', { class: 'px-1 text-sm font-semibold text-slate-800' });
  /** @type {MedicationLine} */
  const line = {
    fields,
    legend,
    remove: button('Remove', { variant: 'link', small: true, onClick: () => onRemove(line) }),
    el: h('fieldset', { class: 'rounded-md border border-slate-300 p-3' }),
  };
  put(line.el, legend,
    h('div', { class: 'grid grid-cols-2 gap-3 sm:grid-cols-3 2xl:grid-cols-6' },
      MED_FIELDS.map(([key]) => fields[key].el)),
    h('div', { class: 'mt-2 text-right' }, line.remove));
  return line;
}

/**
 * What a line's inputs hold, trimmed.
 * @param {MedicationLine} l
 * @returns {Medication}
 */
function valueOf(l) {
  const v = (/** @type {keyof Medication} */ k) => l.fields[k].input.value.trim();
  return { name: v('name'), dose: v('dose'), route: v('route'), frequency: v('frequency'), duration: v('duration'), quantity: v('quantity') };
}

/**
 * Number the lines as they stand now (their inputs' ids keep their own numbers).
 * @param {MedicationLine[]} lines
 */
function renumber(lines) {
  lines.forEach((l, i) => {
    l.legend.textContent = `Medication ${i + 1}`;
    l.remove.setAttribute('aria-label', `Remove medication ${i + 1}`);
  });
}

/**
 * Medication lines that can be added and removed; values() checks and returns the
 * filled ones, the only ones sent (so the API's medications[i] is the i-th filled line).
 */
function medicationLines() {
  let next = 0;
  /** @type {MedicationLine[]} */
  const lines = [];
  const list = h('div', { class: 'space-y-3' });
  const addBtn = button('Add medication line', { variant: 'secondary', small: true, id: 'med-add' });
  const filled = () => lines.filter((l) => Object.values(valueOf(l)).some(Boolean));
  /** @param {MedicationLine} line */
  function remove(line) {
    lines.splice(lines.indexOf(line), 1);
    line.el.remove();
    renumber(lines);
    addBtn.focus();
  }
  function add() {
    const line = medicationLine(next++, remove);
    lines.push(line);
    list.append(line.el);
    renumber(lines);
    return line;
  }
  addBtn.addEventListener('click', () => add().fields.name.input.focus());

  const el = h('fieldset', { class: 'space-y-3' },
    h('legend', { class: 'mb-1 text-sm font-medium text-slate-800' }, 'Medications'),
    h('p', { class: 'text-sm text-slate-600' }, 'One line per medicine. Lines left empty are ignored.'),
    h('datalist', { id: 'med-routes' }, ROUTES.map((r) => h('option', { value: r }))),
    list, addBtn);
  add();

  return {
    el,
    /** @param {Array<[Field, string]>} errors where a line without a name is added */
    values(errors) {
      return filled().map((l) => {
        const v = valueOf(l);
        if (!v.name) errors.push([l.fields.name, 'Name the medication, or clear this line.']);
        return v;
      });
    },
    clearErrors() {
      for (const l of lines) for (const f of Object.values(l.fields)) f.setError('');
    },
    /**
     * The input an API error's field names ("medications[1].dose"), if any.
     * @param {string} name
     */
    fieldNamed(name) {
      const m = /^medications\[(\d+)\]\.([a-z_]+)$/.exec(name);
      if (!m) return null;
      const line = filled()[Number(m[1])] || lines[Number(m[1])];
      return line && Object.hasOwn(line.fields, m[2]) ? line.fields[/** @type {keyof Medication} */ (m[2])] : null;
    },
    reset() {
      for (const l of lines.splice(0)) l.el.remove();
      add();
    },
  };
}
