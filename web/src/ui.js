// @ts-check
// Why this file exists: the small set of building blocks every screen shares, so that
// each looks and behaves the same (labels, messages, loading states, tables, form errors),
// and so that data is only ever put on the page as text (no innerHTML), never as markup.

import { ApiError } from './api.js';

/**
 * What h() and put() take as children: nodes, text (numbers are written out), nothing
 * (null, undefined and false are skipped, so `cond ? x : null` reads naturally), or lists
 * of these, nested as deep as needed.
 * @typedef {Node | string | number | false | null | undefined | Child[]} Child
 */

/**
 * Attributes of h(): `class`, `text`, `value`, `checked`, `on<event>` handlers, and any
 * other attribute (true: present and empty; null, undefined or false: left out).
 * @typedef {Record<string, unknown>} Props
 */

/**
 * Create an element: h('p', { class: 'x', onclick: fn }, 'text', child, [more]).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (k === 'value') /** @type {HTMLInputElement} */ (el).value = String(v);
    else if (k === 'checked') /** @type {HTMLInputElement} */ (el).checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/**
 * Replace an element's children.
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 * @returns {E}
 */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/**
 * A unique id for label/input pairs.
 * @param {string} prefix
 */
export const nextId = (prefix) => `${prefix}-${++uid}`;

// ---- formatting -------------------------------------------------------------------

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const dateOnly = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

/** @param {number | null | undefined} ms */
export const fmtTime = (ms) => (ms ? dateTime.format(new Date(ms)) : '—');
/** @param {number | null | undefined} ms */
export const fmtDate = (ms) => (ms ? dateOnly.format(new Date(ms)) : '—');
/** @param {string | null | undefined} hex */
export const shortHash = (hex) => (hex ? `${hex.slice(0, 10)}…${hex.slice(-4)}` : '—');
/**
 * @param {number | null | undefined} n
 * @param {number} [digits]
 */
export const fmtNumber = (n, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '—'
    : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * What an audit entry's action means, in words.
 * @type {Record<string, string>}
 */
export const ACTION_LABEL = {
  get_chain: 'Viewed records',
  prescriptions: 'Looked up prescriptions',
  fhir_export: 'Exported records (FHIR)',
  break_glass: 'Opened emergency access',
  break_glass_alerts: 'Saw emergency-access alerts',
  break_glass_events: 'Saw emergency-access events',
  department_activity: 'Saw department activity',
};

/** @type {Record<string, string>} */
export const ROLE_LABEL = {
  doctor: 'Doctor',
  patient: 'Patient',
  pharmacy: 'Pharmacy',
  department: 'Department',
};

// ---- layout -----------------------------------------------------------------------

/**
 * A page heading; focused after navigation so screen readers announce the new page.
 * @param {string} title
 * @param {Node | string | null} [subtitle]
 */
export function pageTitle(title, subtitle) {
  return h('header', { class: 'mb-6' },
    h('h1', { class: 'text-2xl font-semibold tracking-tight text-slate-900 focus:outline-none', tabindex: '-1', 'data-page-title': '' }, title),
    subtitle instanceof Node ? subtitle : subtitle ? h('p', { class: 'mt-1 text-slate-600' }, subtitle) : null);
}

/**
 * A titled panel.
 * @param {string} title
 * @param {...Child} children
 */
export function card(title, ...children) {
  const id = nextId('card');
  return h('section', { class: 'rounded-lg border border-slate-200 bg-white p-5 shadow-sm', 'aria-labelledby': id },
    h('h2', { id, class: 'mb-4 text-lg font-semibold text-slate-900' }, title),
    ...children);
}

/**
 * A panel for one action: what it does, its button, then its messages and result, so
 * that every "press to do X" panel reads the same way.
 * @param {string} title
 * @param {string} text
 * @param {HTMLButtonElement} btn
 * @param {...Child} after
 */
export function actionCard(title, text, btn, ...after) {
  return card(title, h('p', { class: 'text-sm text-slate-700' }, text), h('div', { class: 'mt-4' }, btn), ...after);
}

/** @typedef {'slate' | 'green' | 'amber' | 'red' | 'teal' | 'blue'} Tone */

/**
 * @param {string} text
 * @param {Tone} [tone]
 */
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

/**
 * "Loading…" placeholder with a live region.
 * @param {string} [text]
 */
export function loading(text = 'Loading…') {
  return h('p', { class: 'flex items-center gap-2 text-slate-600', role: 'status' }, spinner(), text);
}

/** @param {string} text */
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

/**
 * @typedef {object} ButtonOptions
 * @property {keyof typeof BUTTON} [variant]
 * @property {'button' | 'submit'} [type]
 * @property {(ev: MouseEvent) => void} [onClick]
 * @property {string} [ariaLabel]
 * @property {string} [id]
 * @property {boolean} [small]
 */

/**
 * @param {Child} label
 * @param {ButtonOptions} [options]
 */
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
 * @template T
 * @param {HTMLButtonElement} btn
 * @param {() => Promise<T>} work
 * @param {string} [busyLabel]
 * @returns {Promise<T>}
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

/** @typedef {'success' | 'error' | 'info' | 'warning'} NoticeKind */

/**
 * @typedef {object} Notice
 * @property {HTMLDivElement} el
 * @property {(kind: NoticeKind, ...content: Child[]) => void} show replaces the content
 * @property {(e: unknown) => void} error shows an error's own message (nothing if the
 *   session expired: the page changes to sign-in)
 * @property {() => void} clear
 */

/**
 * A message area. Errors are announced assertively.
 * @returns {Notice}
 */
export function notice() {
  const el = h('div', { class: 'empty:hidden' });
  const tones = {
    success: 'border-emerald-300 bg-emerald-50 text-emerald-900',
    error: 'border-red-300 bg-red-50 text-red-900',
    info: 'border-sky-300 bg-sky-50 text-sky-900',
    warning: 'border-amber-300 bg-amber-50 text-amber-950',
  };
  /** @type {Notice['show']} */
  const show = (kind, ...content) => {
    put(el, h('div', {
      class: `mt-3 rounded-md border px-4 py-3 text-sm ${tones[kind] || tones.info}`,
      role: kind === 'error' ? 'alert' : 'status',
      'data-kind': kind,
    }, ...content));
  };
  return {
    el,
    show,
    error(e) {
      if (e instanceof ApiError && e.expired) return;
      show('error', e instanceof Error ? e.message : String(e));
    },
    clear() {
      el.replaceChildren();
    },
  };
}

/**
 * A message area already showing `e`: what a box shows when its data could not be loaded.
 * @param {unknown} e
 */
export function errorNotice(e) {
  const m = notice();
  m.error(e);
  return m.el;
}

/**
 * Fill `box` with what `draw` makes of `load()`'s answer, or with the error: the shape of
 * every panel that shows one API answer. `draw` comes first so that the type of its
 * parameter is the type the answer is given (see api.js's request).
 * @template T
 * @param {Element} box
 * @param {(data: T) => Child} draw
 * @param {() => Promise<T>} load
 * @returns {Promise<void>}
 */
export async function loadInto(box, draw, load) {
  try {
    put(box, draw(await load()));
  } catch (e) {
    put(box, errorNotice(e));
  }
}

// ---- form fields ------------------------------------------------------------------

const INPUT = 'block w-full rounded-md border-0 bg-white px-3 py-2 text-slate-900 ring-1 ring-inset ring-slate-400 placeholder:text-slate-500 focus:ring-2 focus:ring-teal-600 aria-[invalid=true]:ring-2 aria-[invalid=true]:ring-red-600';

/** @typedef {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} FieldInput */

/**
 * @typedef {object} Field
 * @property {HTMLDivElement} el the label, input, hint and error together
 * @property {FieldInput} input
 * @property {(msg: string) => void} setError marks the input invalid with `msg` next to
 *   it ('' clears it)
 */

/**
 * @typedef {object} FieldOptions
 * @property {string} label
 * @property {string} [id]
 * @property {string} [type] an input type, or 'textarea' or 'select'
 * @property {string} [name]
 * @property {string} [value]
 * @property {boolean} [required]
 * @property {string} [hint]
 * @property {string} [placeholder]
 * @property {string} [autocomplete]
 * @property {number} [rows]
 * @property {Array<[string, string]>} [options] a select's [value, text] pairs
 * @property {string} [list]
 * @property {number} [maxlength]
 * @property {string} [inputmode]
 * @property {string} [extraClass]
 */

/**
 * A labelled input (or textarea/select). The label is always visible; the hint and the
 * error are tied to the input with aria-describedby.
 * @param {FieldOptions} options
 * @returns {Field}
 */
export function field({ label, id = nextId('f'), type = 'text', name, value = '', required = false, hint, placeholder, autocomplete, rows, options = [], list, maxlength, inputmode, extraClass = '' }) {
  /** @type {FieldInput} */
  let input;
  if (type === 'textarea') {
    input = h('textarea', { id, name: name || id, rows: rows || 3, class: INPUT, placeholder, maxlength });
    input.value = value;
  } else if (type === 'select') {
    input = h('select', { id, name: name || id, class: INPUT },
      options.map(([v, text]) => h('option', { value: v }, text)));
    input.value = value || (options.length ? options[0][0] : '');
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

/**
 * Mark the given fields with their messages, focus the first, and report how many need
 * attention in `msg` (if given): the form's own checks before anything is sent.
 * @param {Array<[Field, string]>} errors
 * @param {Notice} [msg]
 * @returns {boolean} whether there was anything to mark
 */
export function showErrors(errors, msg) {
  if (!errors.length) return false;
  for (const [f, m] of errors) f.setError(m);
  errors[0][0].input.focus();
  if (msg) msg.show('error', `Check the form: ${errors.length} field${errors.length === 1 ? '' : 's'} need${errors.length === 1 ? 's' : ''} attention.`);
  return true;
}

/**
 * Mark the input that the API named in its error's `field` (the request field at fault,
 * such as "diagnosis") and move focus to it. `fields` maps request field names to the
 * form's fields (a function for names built at run time, such as medication lines).
 * Returns false when the error names no field of this form: the caller's notice, which
 * shows the message, is then all the user gets.
 * @param {unknown} e
 * @param {Record<string, Field | null | undefined> | ((name: string) => Field | null | undefined)} fields
 */
export function markField(e, fields) {
  if (!(e instanceof ApiError) || !e.field) return false;
  const f = typeof fields === 'function' ? fields(e.field) : Object.hasOwn(fields, e.field) ? fields[e.field] : null;
  if (!f) return false;
  // The label already names the field; a message that starts with its name drops it.
  const prefix = `${e.field}: `;
  f.setError(e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message);
  f.input.focus();
  return true;
}

// ---- tables -----------------------------------------------------------------------

/**
 * A table with a caption (visually hidden if `hideCaption`).
 * @template R
 * @param {string} caption
 * @param {Array<[string, (row: R) => Child]>} columns [heading, cell of a row]
 * @param {R[]} rows
 * @param {{ hideCaption?: boolean, rowAttrs?: (row: R) => Props }} [options]
 */
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

/**
 * A definition list of [term, value] pairs (falsy entries are skipped).
 * @param {Array<[string, Child] | null | false>} pairs
 * @param {string} [cls]
 */
export function facts(pairs, cls = 'grid grid-cols-1 gap-x-6 gap-y-2 sm:grid-cols-2') {
  return h('dl', { class: `${cls} text-sm` },
    pairs.map((p) => (p ? h('div', { class: 'min-w-0' },
      h('dt', { class: 'font-medium text-slate-600' }, p[0]),
      h('dd', { class: 'break-words text-slate-900' }, p[1])) : null)));
}

/**
 * @param {string} text
 * @param {string} [title]
 */
export const mono = (text, title) => h('span', { class: 'font-mono text-xs break-all', title }, text);

/**
 * Replica numbers as small badges: "R0 R1 R2".
 * @param {number[]} list
 */
export function replicas(list) {
  return h('span', { class: 'inline-flex flex-wrap gap-1' },
    list.map((r) => h('span', { class: 'rounded bg-slate-800 px-1.5 py-0.5 font-mono text-xs text-white', title: `Replica ${r}` }, `R${r}`)));
}

/**
 * Medication lines as a compact table (null when there are none).
 * @param {import('./api.js').Medication[] | null | undefined} meds
 * @param {string} [caption]
 */
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

/**
 * Call `fn` on the form's submit instead of sending it: every form here is sent by script.
 * @param {HTMLFormElement} form
 * @param {() => unknown} fn
 */
export function onSubmit(form, fn) {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    fn();
  });
}
