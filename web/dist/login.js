// @ts-check
// Why this file exists: the sign-in screen. It is the only screen without a session, and
// the one every expired session comes back to, so it shows the reason it was opened.

import { ApiError, post, startSession, takeFlash } from './api.js';
import { h, button, busy, field, notice, markField, showErrors, onSubmit } from './ui.js';

/** @type {Array<[string, string, string]>} [role, username, password] of the demo cluster */
const DEMO = [
  ['Doctor', 'd001', 'doctor123'],
  ['Doctor', 'd002', 'doctor456'],
  ['Patient', 'p001', 'patient123'],
  ['Patient', 'p002', 'patient456'],
  ['Pharmacy', 'ph001', 'pharmacy123'],
  ['Department', 'dep001', 'department123'],
];

/**
 * @param {HTMLElement} main
 * @param {{ navigate: import('./app.js').ScreenContext['navigate'] }} ctx
 */
export function render(main, { navigate }) {
  main.className = 'flex flex-1 items-center justify-center bg-slate-50 px-4 py-12';
  const msg = notice();
  const flash = takeFlash();
  if (flash) msg.show(flash.kind, flash.text);
  const form = signInForm(msg, navigate);

  main.append(h('div', { class: 'w-full max-w-md' },
    h('div', { class: 'mb-6 text-center' },
      h('p', { class: 'text-sm font-semibold uppercase tracking-wider text-teal-800' }, 'MedChain'),
      h('h1', { class: 'mt-1 text-2xl font-semibold text-slate-900 focus:outline-none', tabindex: '-1', 'data-page-title': '' }, 'Sign in'),
      h('p', { id: 'login-intro', class: 'mt-2 text-sm text-slate-600' },
        'Medical records shared between hospitals, clinics and pharmacies on a tamper-evident ledger.')),
    h('div', { class: 'rounded-lg border border-slate-200 bg-white p-6 shadow-sm' }, msg.el, form.el),
    demoAccounts()));
  form.focus();
}

/**
 * Username and password; on success the session starts and the role's screen opens.
 * @param {import('./ui.js').Notice} msg
 * @param {import('./app.js').ScreenContext['navigate']} navigate
 */
function signInForm(msg, navigate) {
  const user = field({ label: 'Username', id: 'login-username', autocomplete: 'username', required: true });
  const pass = field({ label: 'Password', id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const passInput = /** @type {HTMLInputElement} */ (pass.input);
  const submit = button('Sign in', { type: 'submit', id: 'login-submit' });
  submit.classList.add('w-full');
  const el = h('form', { class: 'space-y-4', novalidate: true, 'aria-describedby': 'login-intro' },
    user.el, pass.el, submit);

  onSubmit(el, async () => {
    user.setError('');
    pass.setError('');
    const username = user.input.value.trim();
    const password = passInput.value;
    // One at a time, in the order they are filled in.
    if (showErrors(username ? [] : [[user, 'Enter your username.']])) return;
    if (showErrors(password ? [] : [[pass, 'Enter your password.']])) return;
    msg.clear();
    try {
      /** @type {import('./api.js').LoginResponse} */
      const res = await busy(submit, () => post('/api/login', { username, password }, { auth: false }), 'Signing in…');
      startSession(res);
      navigate(res.role);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) msg.show('error', 'Wrong username or password.');
      else msg.error(e);
      if (markField(e, { username: user, password: pass })) return;
      passInput.select();
      passInput.focus();
    }
  });
  return { el, focus: () => user.input.focus() };
}

/** The demo cluster's accounts, folded away. */
function demoAccounts() {
  return h('details', { class: 'mt-4 rounded-lg border border-slate-200 bg-white p-4 text-sm text-slate-700' },
    h('summary', { class: 'cursor-pointer font-medium text-slate-800' }, 'Demo accounts'),
    h('ul', { class: 'mt-3 grid grid-cols-1 gap-1 sm:grid-cols-2' },
      DEMO.map(([role, u, p]) => h('li', {},
        h('span', { class: 'text-slate-600' }, `${role}: `),
        h('span', { class: 'font-mono' }, `${u} / ${p}`)))));
}
