// @ts-check
// Why this file exists: the doctor's workspace. Find a patient, see whether (and why) the
// records may be read, read them, add a record with structured medication lines, use a
// one-time code or break-glass when there is no consent, and validate a block on demand.

import { get, post, query } from './api.js';
import {
  h, put, card, badge, button, busy, field, notice, loading, empty, facts, mono, replicas,
  pageTitle, fmtTime, fmtNumber,
} from './ui.js';
import { timeline } from './records.js';

export function render(main, { session }) {
  let current = null; // the open patient's id
  const panel = h('div', { id: 'patient-panel', class: 'space-y-6' },
    card('No patient open', empty('Find a patient on the left to see their records and add a new one.')));

  // ---- find a patient ----
  const search = field({ label: 'Find a patient', id: 'patient-search', hint: 'Name or patient ID', autocomplete: 'off' });
  const searchBtn = button('Search', { type: 'submit', id: 'patient-search-submit' });
  const results = h('div', { id: 'patient-results', class: 'mt-4', 'aria-live': 'polite' });
  const searchMsg = notice();
  const searchForm = h('form', { class: 'flex items-start gap-2', role: 'search' },
    h('div', { class: 'flex-1' }, search.el), h('div', { class: 'pt-6' }, searchBtn));

  async function find() {
    searchMsg.clear();
    const text = search.input.value.trim();
    put(results, loading('Searching…'));
    try {
      const list = await busy(searchBtn, () => get(`/api/patients${query({ search: text, limit: 50 })}`), 'Searching…');
      put(results, patientList(list, text));
    } catch (e) {
      results.replaceChildren();
      searchMsg.error(e);
    }
  }

  function patientList(list, text) {
    const items = list.map((p) => h('li', {},
      h('button', {
        type: 'button',
        class: 'flex w-full items-center justify-between gap-3 rounded-md px-3 py-2 text-left hover:bg-slate-50 aria-[current=true]:bg-teal-50 aria-[current=true]:ring-1 aria-[current=true]:ring-teal-300',
        'aria-current': p.user_id === current ? 'true' : null,
        'data-patient-id': p.user_id,
        onclick: () => openPatient(p.user_id, p),
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
          button(`Open patient ID “${text}”`, { variant: 'link', onClick: () => openPatient(text, null) }))
        : null);
  }

  searchForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    find();
  });

  // ---- validate block ----
  const validateBtn = button('Validate block', { id: 'validate-block' });
  const validateOut = h('div', { id: 'validate-result', 'aria-live': 'polite' });
  const validateMsg = notice();
  validateBtn.addEventListener('click', async () => {
    validateMsg.clear();
    try {
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

  // ---- the open patient ----
  async function openPatient(pid, summary, flash) {
    current = pid;
    for (const b of results.querySelectorAll('[data-patient-id]')) {
      if (b.dataset.patientId === pid) b.setAttribute('aria-current', 'true');
      else b.removeAttribute('aria-current');
    }
    put(panel, card('Patient', loading(`Opening ${pid}…`)));
    let access;
    try {
      access = await get(`/api/patients/${encodeURIComponent(pid)}/access`);
    } catch (e) {
      const m = notice();
      m.error(e);
      put(panel, card('Patient', m.el));
      return;
    }
    if (current !== pid) return;
    const name = summary ? summary.display_name : pid;
    const now = Date.now();
    const bgUntil = access.break_glass_until_ms && access.break_glass_until_ms > now ? access.break_glass_until_ms : null;
    const canRead = access.consent || bgUntil;

    const status = h('div', { class: 'flex flex-wrap items-center gap-2', id: 'access-status' },
      access.consent ? badge('Consent on record', 'green') : badge('No consent', 'slate'),
      bgUntil ? badge(`Emergency access until ${fmtTime(bgUntil)}`, 'amber') : null);

    const head = h('section', { class: 'rounded-lg border border-slate-200 bg-white p-5 shadow-sm', 'aria-labelledby': 'patient-name' },
      h('div', { class: 'flex flex-wrap items-center justify-between gap-3' },
        h('div', {},
          h('h2', { id: 'patient-name', class: 'text-xl font-semibold text-slate-900 focus:outline-none', tabindex: '-1' }, name),
          h('p', { class: 'text-sm text-slate-600' }, `Patient ID ${pid}${summary ? ` · ${summary.department}` : ''}`)),
        status));

    const recordsBox = h('div', { id: 'patient-records' });
    const sections = [head];
    if (flash) {
      const m = notice();
      m.show('success', flash);
      sections.push(m.el);
    }
    if (canRead) {
      sections.push(card('Records', recordsBox));
      put(recordsBox, loading('Loading records (this read is recorded in the patient’s audit trail)…'));
    } else {
      sections.push(noAccessCard(pid, summary));
    }
    sections.push(addRecordCard(pid, !access.consent, () => loadRecords(pid, recordsBox)));
    put(panel, sections);
    // Keyboard and screen-reader users land on the patient; small screens scroll to it.
    const title = panel.querySelector('#patient-name');
    title.focus({ preventScroll: true });
    if (window.innerWidth < 1024) title.scrollIntoView({ block: 'start' });
    if (canRead) loadRecords(pid, recordsBox);
  }

  async function loadRecords(pid, box) {
    if (!box.isConnected) return;
    try {
      const chain = await post('/api/get_chain', { patient_id: pid });
      if (current !== pid) return;
      put(box,
        h('p', { class: 'mb-4 text-sm text-slate-600' },
          `Access: ${chain.access}. ${chain.records.length} record${chain.records.length === 1 ? '' : 's'}.`),
        timeline(chain.records, { emptyText: 'This patient has no records yet.' }));
    } catch (e) {
      const m = notice();
      m.error(e);
      put(box, m.el);
    }
  }

  function noAccessCard(pid, summary) {
    const msg = notice();
    const reason = field({ label: 'Reason for emergency access', id: 'bg-reason', type: 'textarea', rows: 2, required: true, maxlength: 500, hint: 'Shown to the patient and to the department.' });
    const minutes = field({ label: 'Duration', id: 'bg-minutes', type: 'select', options: [['15', '15 minutes'], ['30', '30 minutes'], ['60', '60 minutes']], value: '60' });
    const ackId = 'bg-ack';
    const ack = h('input', { id: ackId, type: 'checkbox', class: 'mt-1 size-4 rounded border-slate-400 text-red-700' });
    const go = button('Open emergency access', { variant: 'danger', type: 'submit', id: 'bg-submit' });
    const form = h('form', { class: 'mt-4 space-y-4 rounded-md border border-red-200 bg-red-50/40 p-4', novalidate: true },
      h('h3', { class: 'font-semibold text-red-900' }, 'Break-glass (emergencies only)'),
      reason.el, minutes.el,
      h('div', { class: 'flex items-start gap-2' }, ack,
        h('label', { for: ackId, class: 'text-sm text-slate-800' },
          'I need these records for an emergency. This access is written to the ledger and shown to the patient.')),
      go, msg.el);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      reason.setError('');
      msg.clear();
      if (!reason.input.value.trim()) {
        reason.setError('Give the reason for emergency access.');
        reason.input.focus();
        return;
      }
      if (!ack.checked) {
        msg.show('error', 'Confirm that this is an emergency.');
        ack.focus();
        return;
      }
      try {
        const r = await busy(go, () => post('/api/break_glass', {
          patient_id: pid, reason: reason.input.value.trim(), minutes: Number(minutes.input.value),
        }), 'Recording on the ledger…');
        openPatient(pid, summary, `Emergency access granted until ${fmtTime(r.until_ms)} (block #${r.block_height}). The patient and the department can see this.`);
      } catch (e) {
        msg.error(e);
      }
    });
    return card('No consent',
      h('p', { class: 'text-slate-700' },
        'This patient has not given you consent, so their records stay hidden. Ask the patient to grant you access in their MedChain account, or for a one-time code to add a record below.'),
      form);
  }

  function addRecordCard(pid, needsCode, onSaved) {
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

    const textFields = { diagnosis, prescription, notes, consent_code: code, patient_id: null };

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.clear();
      for (const f of Object.values(textFields)) if (f) f.setError('');
      meds.clearErrors();
      const errors = [];
      const diag = diagnosis.input.value.trim();
      if (!diag) errors.push([diagnosis, 'Enter the diagnosis.']);
      if (code && !code.input.value.trim()) errors.push([code, 'Enter the patient’s one-time code, or ask them for consent.']);
      const lines = meds.values(errors);
      if (errors.length) {
        for (const [f, m] of errors) f.setError(m);
        errors[0][0].input.focus();
        msg.show('error', `Check the form: ${errors.length} field${errors.length === 1 ? '' : 's'} need${errors.length === 1 ? 's' : ''} attention.`);
        return;
      }
      const body = {
        patient_id: pid,
        diagnosis: diag,
        prescription: prescription.input.value.trim(),
        notes: notes.input.value.trim(),
        medications: lines,
      };
      if (code) body.consent_code = code.input.value.trim().toUpperCase();
      try {
        const res = await busy(save, () => post('/api/add_record', body), 'Committing to the ledger…');
        form.reset();
        meds.reset();
        const saved = res.block_height !== undefined
          ? h('p', { class: 'font-semibold' }, `Record saved in block #${res.block_height}.`, ' ',
            h('span', { class: 'font-normal' }, 'Block hash '), h('span', { class: 'font-mono text-xs font-normal', title: res.block_hash }, res.block_hash.slice(0, 16), '…'))
          : h('p', { class: 'font-semibold' }, 'Record queued. It is committed when a block is validated.');
        msg.show('success', saved,
          res.prescription_code
            ? h('div', { id: 'rx-code-box', class: 'mt-3 rounded-md border-2 border-teal-600 bg-white p-4 text-slate-900' },
              h('p', { class: 'text-lg' }, 'Prescription code: ',
                h('strong', { id: 'rx-code', class: 'font-mono text-2xl tracking-wider' }, res.prescription_code),
                ' — give this to the patient'),
              h('p', { class: 'mt-1 text-sm text-slate-700' }, 'The pharmacy needs this code to dispense. It is shown only now.'))
            : null);
        if (!needsCode) onSaved();
      } catch (e) {
        msg.error(e);
        markServerError(e, textFields, meds);
      }
    });
    return card(`Add a record for ${pid}`, form);
  }

  main.append(
    pageTitle('Patients', [session.display_name, session.department].filter(Boolean).join(' · ')),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'space-y-6' },
        card('Find a patient', searchForm, searchMsg.el, results),
        card('Validate block',
          h('p', { class: 'text-sm text-slate-700' }, 'Propose a block now and wait until the replicas commit it. Shows who signed it and how long it took.'),
          h('div', { class: 'mt-4' }, validateBtn), validateMsg.el, validateOut)),
      h('div', { class: 'lg:col-span-2' }, panel)));
  find();
}

/** The server names the field in a 422 message ("diagnosis: required"); mark it. */
function markServerError(e, textFields, meds) {
  if (!e || e.status !== 422 || !e.message) return;
  const m = /^([a-z_]+)(?:\[(\d+)\]\.([a-z_]+))?:\s*(.*)$/.exec(e.message);
  if (!m) return;
  if (m[1] === 'medications' && m[2] !== undefined) meds.setError(Number(m[2]), m[3], m[4]);
  else if (textFields[m[1]]) {
    textFields[m[1]].setError(m[4]);
    textFields[m[1]].input.focus();
  }
}

const MED_FIELDS = [
  ['name', 'Medication', 'e.g. Amlodipine'],
  ['dose', 'Dose', 'e.g. 5 mg'],
  ['route', 'Route', 'e.g. oral'],
  ['frequency', 'Frequency', 'e.g. once daily'],
  ['duration', 'Duration', 'e.g. 30 days'],
  ['quantity', 'Quantity', 'e.g. 30'],
];

/** Medication lines that can be added and removed; values() checks and returns them. */
function medicationLines() {
  let next = 0;
  const lines = [];
  const list = h('div', { class: 'space-y-3' });
  const routes = h('datalist', { id: 'med-routes' },
    ['oral', 'sublingual', 'intravenous', 'intramuscular', 'subcutaneous', 'topical', 'inhaled', 'rectal', 'ophthalmic'].map((r) => h('option', { value: r })));
  const addBtn = button('Add medication line', { variant: 'secondary', small: true, id: 'med-add' });

  function add() {
    const n = next++;
    const fields = {};
    for (const [key, label, ph] of MED_FIELDS) {
      fields[key] = field({
        label, id: `med-${n}-${key}`, placeholder: ph, maxlength: key === 'name' ? 200 : 100,
        list: key === 'route' ? 'med-routes' : undefined, autocomplete: 'off',
      });
    }
    const line = { n, fields };
    const remove = button('Remove', { variant: 'link', small: true, onClick: () => {
      lines.splice(lines.indexOf(line), 1);
      line.el.remove();
      renumber();
      addBtn.focus();
    } });
    line.legend = h('legend', { class: 'px-1 text-sm font-semibold text-slate-800' });
    line.remove = remove;
    line.el = h('fieldset', { class: 'rounded-md border border-slate-300 p-3' },
      line.legend,
      h('div', { class: 'grid grid-cols-2 gap-3 sm:grid-cols-3 2xl:grid-cols-6' },
        MED_FIELDS.map(([key]) => fields[key].el)),
      h('div', { class: 'mt-2 text-right' }, remove));
    lines.push(line);
    list.append(line.el);
    renumber();
    return line;
  }

  function renumber() {
    lines.forEach((l, i) => {
      l.legend.textContent = `Medication ${i + 1}`;
      l.remove.setAttribute('aria-label', `Remove medication ${i + 1}`);
    });
  }

  addBtn.addEventListener('click', () => add().fields.name.input.focus());

  const el = h('fieldset', { class: 'space-y-3' },
    h('legend', { class: 'mb-1 text-sm font-medium text-slate-800' }, 'Medications'),
    h('p', { class: 'text-sm text-slate-600' }, 'One line per medicine. Lines left empty are ignored.'),
    routes, list, addBtn);
  add();

  return {
    el,
    values(errors) {
      const out = [];
      for (const l of lines) {
        const v = Object.fromEntries(MED_FIELDS.map(([k]) => [k, l.fields[k].input.value.trim()]));
        const any = Object.values(v).some(Boolean);
        if (!any) continue;
        if (!v.name) errors.push([l.fields.name, 'Name the medication, or clear this line.']);
        out.push(v);
      }
      return out;
    },
    clearErrors() {
      for (const l of lines) for (const f of Object.values(l.fields)) f.setError('');
    },
    /** Mark the i-th non-empty line's field. */
    setError(i, key, message) {
      const filled = lines.filter((l) => MED_FIELDS.some(([k]) => l.fields[k].input.value.trim()));
      const line = filled[i] || lines[i];
      if (line && line.fields[key]) {
        line.fields[key].setError(message);
        line.fields[key].input.focus();
      }
    },
    reset() {
      for (const l of lines.splice(0)) l.el.remove();
      add();
    },
  };
}
