// @ts-check
// Why this file exists: two-step sign-in (TOTP) from the user's side. Setting it up is the
// same three steps wherever it starts (at sign-in when the organisation requires it, or
// from the header's "Two-step sign-in" screen): the node makes a secret and draws its QR
// code (a server-side crate draws it; no image service sees the secret), the user scans
// it or types the secret into an authenticator app, and a first code confirms it, which
// shows the ten recovery codes once. The header warns staff whose sign-in is still one
// step ("two-step sign-in not set up").

import { ApiError, get, post, setFlash } from './api.js';
import { h, put, button, busy, card, field, notice, pageTitle, markField, showErrors, onSubmit } from './ui.js';

/**
 * @typedef {object} EnrollResponse
 * @property {string} secret base32
 * @property {string} otpauth_uri
 * @property {string} qr_svg an SVG document drawn by the node
 */

/** @typedef {{ recovery_codes: string[], sign_in_again: boolean }} ConfirmResponse */

/** @typedef {{ enrolled: boolean, required: boolean }} MfaStatus */

/** A six-digit code as typed (spaces allowed, as apps show "123 456"). */
export const normaliseCode = (/** @type {string} */ s) => s.replace(/\s+/g, '');

/**
 * The field for a code from the authenticator app (also takes a recovery code at sign-in).
 * @param {string} id
 * @param {string} [hint]
 * @param {boolean} [required]
 */
export function codeField(id, hint, required = true) {
  return field({
    label: 'Code from your authenticator app', id, required, autocomplete: 'one-time-code',
    inputmode: 'numeric', maxlength: 32, placeholder: '123456', hint,
  });
}

/**
 * Set up two-step sign-in: the QR code and secret, a field for the first code, and then
 * the recovery codes. `token` is the session's or the sign-in's setup token (which opens
 * only the enrolment routes).
 * @param {{ token: string, onDone: (codes: string[]) => void }} options
 */
export function enrolForm({ token, onDone }) {
  const msg = notice();
  const qr = h('div', { id: 'mfa-qr', class: 'flex size-48 items-center justify-center rounded-md bg-white ring-1 ring-slate-200' },
    h('span', { class: 'text-sm text-slate-500' }, 'Loading…'));
  const secret = h('code', { id: 'mfa-secret', class: 'block break-all rounded bg-slate-100 px-2 py-1 font-mono text-sm text-slate-900' });
  const code = codeField('mfa-code', 'The six digits the app shows now, after adding the account.');
  const submit = button('Confirm and turn on', { type: 'submit', id: 'mfa-confirm' });
  const form = h('form', { class: 'space-y-4', novalidate: true, id: 'mfa-enrol-form' }, code.el, submit, msg.el);
  const el = h('div', { class: 'space-y-4' },
    h('ol', { class: 'list-decimal space-y-1 pl-5 text-sm text-slate-700' },
      h('li', {}, 'Open an authenticator app on your phone (any app for "TOTP" codes).'),
      h('li', {}, 'Scan this QR code, or type the secret below into the app.'),
      h('li', {}, 'Enter the code the app then shows.')),
    h('div', { class: 'flex flex-wrap items-start gap-4' }, qr,
      h('div', { class: 'min-w-0 flex-1 space-y-1' },
        h('p', { class: 'text-sm font-medium text-slate-800' }, 'Secret (for typing in)'), secret,
        h('p', { class: 'text-xs text-slate-600' }, 'Keep it to yourself: whoever has it can make your codes.'))),
    form);

  (async () => {
    try {
      /** @type {EnrollResponse} */
      const e = await post('/api/mfa/totp/enroll', {}, { token });
      // An <img> of the node's SVG: drawn without running anything the document holds.
      put(qr, h('img', {
        src: `data:image/svg+xml;base64,${btoa(e.qr_svg)}`, alt: 'QR code of the two-step sign-in secret',
        class: 'size-48', id: 'mfa-qr-img',
      }));
      secret.textContent = e.secret.replace(/(.{4})/g, '$1 ').trim();
      secret.dataset.secret = e.secret;
      code.input.focus();
    } catch (e) {
      put(qr);
      msg.error(e);
    }
  })();

  onSubmit(form, async () => {
    code.setError('');
    msg.clear();
    const c = normaliseCode(code.input.value);
    if (showErrors(/^\d{6}$/.test(c) ? [] : [[code, 'Enter the six digits the app shows.']])) return;
    try {
      /** @type {ConfirmResponse} */
      const r = await busy(submit, () => post('/api/mfa/totp/confirm', { code: c }, { token }), 'Checking…');
      onDone(r.recovery_codes);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'mfa_invalid') code.setError('That code is wrong or has expired. Enter the code the app shows now.');
      else msg.error(e);
      markField(e, { code });
      code.input.focus();
    }
  });
  return { el, focus: () => code.input.focus() };
}

/**
 * The recovery codes, shown once, and what to do next.
 * @param {string[]} codes
 * @param {import('./ui.js').Child} next
 */
export function recoveryCodes(codes, next) {
  return h('div', { class: 'space-y-4', id: 'mfa-done' },
    h('p', { class: 'rounded-md border border-emerald-300 bg-emerald-50 px-4 py-3 text-sm text-emerald-900', role: 'status' },
      'Two-step sign-in is on. From now on, signing in needs your password and a code from the app.'),
    h('p', { class: 'text-sm text-slate-700' },
      'Recovery codes: each one signs you in once if you lose your phone. Print them or store them somewhere safe; they are not shown again.'),
    h('ul', { id: 'recovery-codes', class: 'grid grid-cols-2 gap-1 rounded-md bg-slate-100 p-3 font-mono text-sm text-slate-900' },
      codes.map((c) => h('li', {}, c))),
    next);
}

/**
 * #/mfa: a signed-in user's two-step sign-in: set it up, or see that it is on (and turn
 * it off where the organisation does not require it).
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
function renderMfaScreen(main, { session, navigate }) {
  const box = h('div', { class: 'max-w-2xl' }, h('p', { class: 'text-sm text-slate-600' }, 'Loading…'));
  main.append(pageTitle('Two-step sign-in', `${session.display_name || session.user_id} · ${session.user_id}`), box);
  (async () => {
    /** @type {MfaStatus} */
    let st;
    try {
      st = await get('/api/mfa');
    } catch (e) {
      const m = notice();
      m.error(e);
      put(box, m.el);
      return;
    }
    if (!st.enrolled) {
      const form = enrolForm({
        // The session's token, given explicitly: a wrong code (401) must not end the session.
        token: session.token,
        onDone(codes) {
          put(box, card('Two-step sign-in', recoveryCodes(codes,
            button('Back to your dashboard', { id: 'mfa-back', onClick: () => navigate(session.role) }))));
        },
      });
      put(box, card('Set up two-step sign-in',
        st.required
          ? h('p', { class: 'mb-4 text-sm text-slate-700' }, 'Your organisation requires it for your role.')
          : h('p', { class: 'mb-4 text-sm text-slate-700' }, 'A code from your phone at each sign-in, so that a stolen password alone opens nothing. Emergency access asks for a fresh code too.'),
        form.el));
      return;
    }
    const on = h('p', { id: 'mfa-on', class: 'text-sm text-slate-700' },
      'Two-step sign-in is on: signing in needs your password and a code from your app.');
    if (st.required) {
      put(box, card('Two-step sign-in', on,
        h('p', { class: 'mt-2 text-sm text-slate-600' }, 'Your organisation requires it for your role, so it cannot be turned off here.')));
      return;
    }
    const msg = notice();
    const code = codeField('mfa-disable-code');
    const off = button('Turn off', { type: 'submit', variant: 'secondary', id: 'mfa-disable' });
    const form = h('form', { class: 'mt-4 space-y-4', novalidate: true }, code.el, off, msg.el);
    onSubmit(form, async () => {
      code.setError('');
      msg.clear();
      const c = normaliseCode(code.input.value);
      if (showErrors(c ? [] : [[code, 'Enter the code the app shows now.']])) return;
      try {
        await busy(off, () => post('/api/mfa/totp/disable', { code: c }, { token: session.token }), 'Turning off…');
        setFlash('info', 'Two-step sign-in is off.');
        navigate('mfa');
      } catch (e) {
        if (e instanceof ApiError && e.code === 'mfa_invalid') code.setError('That code is wrong or has expired.');
        else msg.error(e);
      }
    });
    put(box, card('Two-step sign-in', on, form));
  })();
}

/** The #/mfa screen, for app.js's routes. */
export const mfaScreen = { render: renderMfaScreen };

/** @type {Map<string, MfaStatus>} user id -> status, read once per page load and user */
const statusCache = new Map();

/**
 * For staff without two-step sign-in: a banner that says so and links to set it up
 * (null for patients, and once it is on).
 * @param {import('./api.js').Session} s
 * @returns {Promise<HTMLElement | null>}
 */
export async function setupBanner(s) {
  if (s.role === 'patient') return null;
  let st = statusCache.get(s.user_id);
  if (!st) {
    try {
      st = /** @type {MfaStatus} */ (await get('/api/mfa'));
    } catch {
      return null; // the screen itself shows why the node is unreachable
    }
    if (st.enrolled) statusCache.set(s.user_id, st);
  }
  if (st.enrolled) return null;
  return h('div', { id: 'mfa-banner', class: 'border-b border-amber-300 bg-amber-50', role: 'status' },
    h('p', { class: 'mx-auto max-w-7xl px-4 py-2 text-sm text-amber-950 sm:px-6' },
      'Two-step sign-in not set up. ',
      h('a', { href: '#/mfa', class: 'font-medium underline underline-offset-2' }, 'Set it up now'),
      ' so that a stolen password alone cannot open your account.'));
}
