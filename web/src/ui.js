// Why this file exists: the small set of building blocks every screen shares, so that
// each looks and behaves the same (labels, messages, loading states, tables), and so that
// data is only ever put on the page as text (no innerHTML), never as markup.

/** Create an element: h('p', { class: 'x', onclick: fn }, 'text', child, [more]). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/input pairs. */
export const nextId = (prefix) => `${prefix}-${++uid}`;

// ---- formatting -------------------------------------------------------------------

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const dateOnly = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

export const fmtTime = (ms) => (ms ? dateTime.format(new Date(ms)) : '—');
export const fmtDate = (ms) => (ms ? dateOnly.format(new Date(ms)) : '—');
export const shortHash = (hex) => (hex ? `${hex.slice(0, 10)}…${hex.slice(-4)}` : '—');
export const fmtNumber = (n, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '—'
    : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** What an audit entry's action means, in words. */
export const ACTION_LABEL = {
  get_chain: 'Viewed records',
  prescriptions: 'Looked up prescriptions',
  fhir_export: 'Exported records (FHIR)',
};

export const ROLE_LABEL = {
  doctor: 'Doctor',
  patient: 'Patient',
  pharmacy: 'Pharmacy',
  department: 'Department',
};

// ---- layout -----------------------------------------------------------------------

/** A page heading; focused after navigation so screen readers announce the new page. */
export function pageTitle(title, subtitle) {
  return h('header', { class: 'mb-6' },
    h('h1', { class: 'text-2xl font-semibold tracking-tight text-slate-900 focus:outline-none', tabindex: '-1', 'data-page-title': '' }, title),
    subtitle instanceof Node ? subtitle : subtitle ? h('p', { class: 'mt-1 text-slate-600' }, subtitle) : null);
}

/** A titled panel. */
export function card(title, ...children) {
  const id = nextId('card');
  return h('section', { class: 'rounded-lg border border-slate-200 bg-white p-5 shadow-sm', 'aria-labelledby': id },
    h('h2', { id, class: 'mb-4 text-lg font-semibold text-slate-900' }, title),
    ...children);
}

export function badge(text, tone = 'slate') {
  const tones = {
    slate: 'bg-slate-100 text-slate-800 ring-slate-300',
    green: 'bg-emerald-50 text-emerald-800 ring-emerald-300',
    amber: 'bg-amber-50 text-amber-900 ring-amber-300',
    red: 'bg-red-50 text-red-800 ring-red-300',
    teal: 'bg-teal-50 text-teal-800 ring-teal-300',
    blue: 'bg-sky-50 text-sky-900 ring-sky-300',
  };
  return h('span', { class: `inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${tones[tone] || tones.slate}` }, text);
}

export function spinner() {
  return h('span', { class: 'inline-block size-4 animate-spin rounded-full border-2 border-current border-r-transparent align-[-2px]', 'aria-hidden': 'true' });
}

/** "Loading…" placeholder with a live region. */
export function loading(text = 'Loading…') {
  return h('p', { class: 'flex items-center gap-2 text-slate-600', role: 'status' }, spinner(), text);
}

export function empty(text) {
  return h('p', { class: 'rounded-md border border-dashed border-slate-300 p-4 text-center text-slate-600' }, text);
}

// ---- buttons ----------------------------------------------------------------------

const BUTTON = {
  primary: 'bg-teal-700 text-white hover:bg-teal-800 disabled:bg-slate-400',
  secondary: 'bg-white text-slate-800 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 disabled:text-slate-500',
  danger: 'bg-red-700 text-white hover:bg-red-800 disabled:bg-slate-400',
  link: 'text-teal-800 underline underline-offset-2 hover:text-teal-900 px-0 py-0',
};

export function button(label, { variant = 'primary', type = 'button', onClick, ariaLabel, id, small = false } = {}) {
  const size = variant === 'link' ? '' : small ? 'whitespace-nowrap px-2.5 py-1 text-sm' : 'whitespace-nowrap px-4 py-2 text-sm';
  return h('button', {
    type,
    id,
    class: `inline-flex items-center justify-center gap-2 rounded-md font-medium ${size} ${BUTTON[variant]}`,
    'aria-label': ariaLabel,
    onclick: onClick,
  }, label);
}

/**
 * Run `work` with the button showing a spinner and disabled (and the form marked busy);
 * the label comes back afterwards.
 */
export async function busy(btn, work, busyLabel = 'Working…') {
  const saved = [...btn.childNodes];
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  put(btn, spinner(), busyLabel);
  try {
    return await work();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    put(btn, saved);
  }
}

// ---- messages ---------------------------------------------------------------------

/** A message area; `show` replaces its content. Errors are announced assertively. */
export function notice() {
  const el = h('div', { class: 'empty:hidden' });
  const tones = {
    success: 'border-emerald-300 bg-emerald-50 text-emerald-900',
    error: 'border-red-300 bg-red-50 text-red-900',
    info: 'border-sky-300 bg-sky-50 text-sky-900',
    warning: 'border-amber-300 bg-amber-50 text-amber-950',
  };
  return {
    el,
    show(kind, ...content) {
      put(el, h('div', {
        class: `mt-3 rounded-md border px-4 py-3 text-sm ${tones[kind] || tones.info}`,
        role: kind === 'error' ? 'alert' : 'status',
        'data-kind': kind,
      }, ...content));
    },
    /** Show an API error's own message (nothing if the session expired: the page changes). */
    error(e) {
      if (e && e.expired) return;
      this.show('error', e && e.message ? e.message : String(e));
    },
    clear() {
      el.replaceChildren();
    },
  };
}

// ---- form fields ------------------------------------------------------------------

const INPUT = 'block w-full rounded-md border-0 bg-white px-3 py-2 text-slate-900 ring-1 ring-inset ring-slate-400 placeholder:text-slate-500 focus:ring-2 focus:ring-teal-600 aria-[invalid=true]:ring-2 aria-[invalid=true]:ring-red-600';

/**
 * A labelled input (or textarea/select): returns { el, input, setError }. The label is
 * always visible; the hint and the error are tied to the input with aria-describedby.
 */
export function field({ label, id = nextId('f'), type = 'text', name, value = '', required = false, hint, placeholder, autocomplete, rows, options, list, maxlength, inputmode, extraClass = '' }) {
  let input;
  if (type === 'textarea') {
    input = h('textarea', { id, name: name || id, rows: rows || 3, class: INPUT, placeholder, maxlength });
    input.value = value;
  } else if (type === 'select') {
    input = h('select', { id, name: name || id, class: INPUT },
      options.map(([v, text]) => h('option', { value: v }, text)));
    input.value = value || options[0][0];
  } else {
    input = h('input', { id, name: name || id, type, class: INPUT, placeholder, autocomplete, list, maxlength, inputmode, value });
  }
  if (required) input.required = true;
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const err = h('p', { id: errId, class: 'mt-1 text-sm font-medium text-red-700 empty:hidden' });
  input.setAttribute('aria-describedby', hint ? `${hintId} ${errId}` : errId);
  const el = h('div', { class: extraClass },
    h('label', { for: id, class: 'mb-1 block text-sm font-medium text-slate-800' }, label,
      required ? h('span', { class: 'text-red-700', 'aria-hidden': 'true' }, ' *') : null),
    input,
    hint ? h('p', { id: hintId, class: 'mt-1 text-sm text-slate-600' }, hint) : null,
    err);
  return {
    el,
    input,
    setError(msg) {
      err.textContent = msg || '';
      if (msg) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

// ---- tables -----------------------------------------------------------------------

/** A table with a caption (visually hidden if `hideCaption`); columns: [[label, row => cell]]. */
export function table(caption, columns, rows, { hideCaption = true, rowAttrs } = {}) {
  return h('div', { class: 'overflow-x-auto' },
    h('table', { class: 'min-w-full divide-y divide-slate-200 text-left text-sm' },
      h('caption', { class: hideCaption ? 'sr-only' : 'mb-2 text-left text-sm text-slate-600' }, caption),
      h('thead', {},
        h('tr', {}, columns.map(([label]) => h('th', { scope: 'col', class: 'whitespace-nowrap px-3 py-2 font-semibold text-slate-700' }, label)))),
      h('tbody', { class: 'divide-y divide-slate-100' },
        rows.map((row) => h('tr', rowAttrs ? rowAttrs(row) : {},
          columns.map(([, render]) => h('td', { class: 'px-3 py-2 align-top text-slate-800' }, render(row))))))));
}

/** A definition list of [term, value] pairs. */
export function facts(pairs, cls = 'grid grid-cols-1 gap-x-6 gap-y-2 sm:grid-cols-2') {
  return h('dl', { class: `${cls} text-sm` },
    pairs.filter(Boolean).map(([k, v]) => h('div', { class: 'min-w-0' },
      h('dt', { class: 'font-medium text-slate-600' }, k),
      h('dd', { class: 'break-words text-slate-900' }, v))));
}

export const mono = (text, title) => h('span', { class: 'font-mono text-xs break-all', title }, text);

/** Replica numbers as small badges: "R0 R1 R2". */
export function replicas(list) {
  return h('span', { class: 'inline-flex flex-wrap gap-1' },
    list.map((r) => h('span', { class: 'rounded bg-slate-800 px-1.5 py-0.5 font-mono text-xs text-white', title: `Replica ${r}` }, `R${r}`)));
}

/** Medication lines as a compact table. */
export function medicationTable(meds, caption = 'Medications') {
  if (!meds || meds.length === 0) return null;
  return table(caption, [
    ['Medication', (m) => h('span', { class: 'font-medium' }, m.name)],
    ['Dose', (m) => m.dose || '—'],
    ['Route', (m) => m.route || '—'],
    ['Frequency', (m) => m.frequency || '—'],
    ['Duration', (m) => m.duration || '—'],
    ['Quantity', (m) => m.quantity || '—'],
  ], meds);
}
