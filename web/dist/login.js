// @ts-check
// Why this file exists: signing in, and choosing a password. The sign-in screen is the
// only screen without a session, and the one every expired session comes back to, so it
// shows the reason it was opened. A user whose password an administrator set (a
// department registering them) gets a token that opens only POST /api/password, so the
// sign-in screen asks for a new password before the session starts; every signed-in user
// can also change theirs from the header (#/password, `passwordScreen`). The node's rule
// is checked here first (8 to 128 characters, not the current one) so that a typo costs no
// round trip, and the node's own refusals are shown in the form. A change ends the user's
// other sessions; its answer carries the tokens this session continues with, so no second
// sign-in is needed. Two-step sign-in adds a code field when the node asks for it
// (`mfa_required`), and where the organisation requires it and it is not set up yet, the
// sign-in's token opens only the enrolment, which this screen shows next (mfa.js).

import { ApiError, post, setFlash, startSession, takeFlash } from './api.js';
import { h, put, button, busy, card, field, notice, pageTitle, markField, showErrors, onSubmit } from './ui.js';
import { codeField, enrolForm, normaliseCode, recoveryCodes } from './mfa.js';

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
  const title = h('h1', { class: 'mt-1 text-2xl font-semibold text-slate-900 focus:outline-none', tabindex: '-1', 'data-page-title': '' }, 'Sign in');
  const intro = h('p', { id: 'login-intro', class: 'mt-2 text-sm text-slate-600' },
    'Medical records shared between hospitals, clinics and pharmacies on a tamper-evident ledger.');
  const box = h('div', { class: 'rounded-lg border border-slate-200 bg-white p-6 shadow-sm' });
  const demo = demoAccounts();
  /** @type {PasswordStep} */
  const choosePassword = (login, password) => {
    put(title, 'Choose a new password');
    document.title = 'Choose a new password · MedChain';
    put(intro, `Welcome, ${login.display_name || login.user_id}. Your password was set by an administrator: choose your own to continue. Only you will know it.`);
    demo.remove();
    const form = passwordForm({
      userId: login.user_id,
      current: password,
      token: login.token,
      submitLabel: 'Save and continue',
      onChanged(res) {
        if (res.mfa_setup_required) return setUpMfa(res);
        startSession(res);
        navigate(res.role);
      },
      onRefused(e) {
        // The password-change token ran out: start again from the password given.
        if (e.status !== 401) return false;
        setFlash('error', 'That sign-in has expired. Sign in again with the password you were given.');
        navigate('login');
        return true;
      },
    });
    put(box, form.el,
      h('p', { class: 'mt-4 text-sm' }, button('Back to sign in', { variant: 'link', onClick: () => navigate('login') })));
    form.focus();
  };
  /** @param {import('./api.js').LoginResponse} login */
  const setUpMfa = (login) => {
    put(title, 'Set up two-step sign-in');
    document.title = 'Set up two-step sign-in · MedChain';
    put(intro, `Welcome, ${login.display_name || login.user_id}. Your organisation requires a code from your phone at each sign-in, in addition to your password. Set it up once now.`);
    demo.remove();
    msg.clear();
    const form = enrolForm({
      token: login.token,
      onDone(codes) {
        put(title, 'Two-step sign-in is on');
        put(box, recoveryCodes(codes,
          button('Sign in with a code', {
            id: 'mfa-sign-in-again',
            onClick: () => {
              setFlash('success', 'Two-step sign-in is on. Sign in with your password and a code from the app.');
              navigate('login');
            },
          })));
      },
    });
    put(box, form.el,
      h('p', { class: 'mt-4 text-sm' }, button('Back to sign in', { variant: 'link', onClick: () => navigate('login') })));
    form.focus();
  };
  const form = signInForm(msg, navigate, choosePassword, setUpMfa);

  main.append(h('div', { class: 'w-full max-w-md' },
    h('div', { class: 'mb-6 text-center' },
      h('p', { class: 'text-sm font-semibold uppercase tracking-wider text-teal-800' }, 'MedChain'),
      title, intro),
    put(box, msg.el, form.el),
    demo));
  form.focus();
}

/**
 * What follows a sign-in whose password an administrator set: the form for a new one.
 * @callback PasswordStep
 * @param {import('./api.js').LoginResponse} login
 * @param {string} password the password just typed (the current one, not asked again)
 * @returns {void}
 */

/**
 * Username and password; on success the session starts and the role's screen opens (or,
 * for a password an administrator set, `choosePassword` takes over).
 * @param {import('./ui.js').Notice} msg
 * @param {import('./app.js').ScreenContext['navigate']} navigate
 * @param {PasswordStep} choosePassword
 * @param {(login: import('./api.js').LoginResponse) => void} setUpMfa the enrolment step,
 *   for a sign-in whose token opens only that
 */
function signInForm(msg, navigate, choosePassword, setUpMfa) {
  const user = field({ label: 'Username', id: 'login-username', autocomplete: 'username', required: true });
  const pass = field({ label: 'Password', id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const passInput = /** @type {HTMLInputElement} */ (pass.input);
  // Shown once the node says this account needs a code (401 mfa_required).
  const totp = codeField('login-totp', 'Or one of your recovery codes.');
  totp.el.hidden = true;
  const submit = button('Sign in', { type: 'submit', id: 'login-submit' });
  submit.classList.add('w-full');
  const el = h('form', { class: 'space-y-4', novalidate: true, 'aria-describedby': 'login-intro' },
    user.el, pass.el, totp.el, submit);

  onSubmit(el, async () => {
    user.setError('');
    pass.setError('');
    totp.setError('');
    const username = user.input.value.trim();
    const password = passInput.value;
    const code = totp.el.hidden ? '' : normaliseCode(totp.input.value);
    // One at a time, in the order they are filled in.
    if (showErrors(username ? [] : [[user, 'Enter your username.']])) return;
    if (showErrors(password ? [] : [[pass, 'Enter your password.']])) return;
    if (showErrors(totp.el.hidden || code ? [] : [[totp, 'Enter the code from your authenticator app.']])) return;
    msg.clear();
    try {
      /** @type {import('./api.js').LoginResponse} */
      const res = await busy(submit, () => post('/api/login', code ? { username, password, totp: code } : { username, password }, { auth: false }), 'Signing in…');
      // Not kept as the session: its token opens only POST /api/password.
      if (res.password_change_required) return choosePassword(res, password);
      // Nor this one: it opens only the enrolment.
      if (res.mfa_setup_required) return setUpMfa(res);
      startSession(res);
      navigate(res.role);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'mfa_required') {
        totp.el.hidden = false;
        msg.show('info', 'This account has two-step sign-in: enter the code your authenticator app shows now.');
        totp.input.focus();
        return;
      }
      if (e instanceof ApiError && (e.code === 'mfa_invalid' || e.code === 'code_used')) {
        totp.setError(e.code === 'code_used'
          ? 'That code was used already. Wait for the app to show the next one.'
          : 'That code is wrong or has expired. Enter the code the app shows now.');
        /** @type {HTMLInputElement} */ (totp.input).select();
        totp.input.focus();
        return;
      }
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

// ---- choosing a password ------------------------------------------------------------

/** The node's rule for a new password (MIN/MAX_PASSWORD_CHARS in crates/api/src/auth.rs). */
const MIN_PASSWORD_CHARS = 8;
const MAX_PASSWORD_CHARS = 128;

/**
 * Characters as the node counts them (Unicode scalar values, not UTF-16 units).
 * @param {string} s
 */
const chars = (s) => [...s].length;

/**
 * @typedef {object} PasswordFormOptions
 * @property {string} userId for the browser's password manager
 * @property {string | null} current the password just typed at sign-in (then not asked
 *   again), or null to ask for it
 * @property {string} [token] the sign-in screen's password-change token (default: the
 *   session's)
 * @property {string} submitLabel
 * @property {(res: import('./api.js').LoginResponse) => void} onChanged gets the node's
 *   answer: the tokens this session continues with
 * @property {(e: ApiError) => boolean} [onRefused] a refusal the caller handles itself
 *   (returns true), such as an expired sign-in
 */

/**
 * Current password (unless known), the new one twice, and the submit button.
 * @param {PasswordFormOptions} options
 */
function passwordForm({ userId, current, token, submitLabel, onChanged, onRefused }) {
  const msg = notice();
  const cur = current === null
    ? field({ label: 'Current password', id: 'pw-current', type: 'password', required: true, autocomplete: 'current-password' })
    : null;
  const next = field({
    label: 'New password', id: 'pw-new', type: 'password', required: true, autocomplete: 'new-password',
    hint: `${MIN_PASSWORD_CHARS} to ${MAX_PASSWORD_CHARS} characters, different from the current one. A passphrase of a few words is easy to remember and hard to guess.`,
  });
  const again = field({ label: 'New password again', id: 'pw-confirm', type: 'password', required: true, autocomplete: 'new-password' });
  const submit = button(submitLabel, { type: 'submit', id: 'pw-submit' });
  const el = h('form', { class: 'space-y-4', novalidate: true, id: 'password-form' },
    // The account name, for password managers that save the new password under it.
    h('input', { type: 'hidden', name: 'username', autocomplete: 'username', value: userId }),
    cur ? cur.el : null, next.el, again.el, submit, msg.el);
  /** The request's fields, by the names the API gives in an error's `field`. */
  const fields = { current_password: cur, new_password: next };

  onSubmit(el, async () => {
    msg.clear();
    for (const f of [cur, next, again]) if (f) f.setError('');
    const currentPassword = cur ? cur.input.value : current || '';
    const newPassword = next.input.value;
    /** @type {Array<[import('./ui.js').Field, string]>} */
    const errors = [];
    if (cur && !currentPassword) errors.push([cur, 'Enter your current password.']);
    if (!newPassword) errors.push([next, 'Enter a new password.']);
    else if (chars(newPassword) < MIN_PASSWORD_CHARS) errors.push([next, `Use at least ${MIN_PASSWORD_CHARS} characters.`]);
    else if (chars(newPassword) > MAX_PASSWORD_CHARS) errors.push([next, `Use at most ${MAX_PASSWORD_CHARS} characters.`]);
    else if (currentPassword && newPassword === currentPassword) errors.push([next, 'Choose a password different from the current one.']);
    if (newPassword && !errors.some(([f]) => f === next) && again.input.value !== newPassword) {
      errors.push([again, 'The two passwords do not match.']);
    }
    if (showErrors(errors)) return;
    try {
      /** @type {import('./api.js').LoginResponse} */
      const res = await busy(submit, () => post('/api/password',
        { current_password: currentPassword, new_password: newPassword }, token ? { token } : undefined), 'Saving…');
      el.reset();
      onChanged(res);
    } catch (e) {
      if (e instanceof ApiError && onRefused && onRefused(e)) return;
      msg.error(e);
      markField(e, fields);
    }
  });
  return { el, focus: () => (cur || next).input.focus(), msg };
}

/**
 * #/password: any signed-in user changes their password.
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
function renderPasswordScreen(main, { session }) {
  const form = passwordForm({
    userId: session.user_id,
    current: null,
    submitLabel: 'Change password',
    onChanged(res) {
      startSession(res);
      form.msg.show('success', 'Your password was changed. Every other place where you were signed in has been signed out; this one continues. ',
        h('a', { href: `#/${res.role}`, class: 'font-medium underline underline-offset-2' }, 'Back to your dashboard'));
    },
  });
  main.append(
    pageTitle('Change password', `${session.display_name || session.user_id} · ${session.user_id}`),
    h('div', { class: 'max-w-lg' },
      card('Choose a new password',
        h('p', { class: 'mb-4 text-sm text-slate-700' },
          'Changing your password signs you out everywhere else (other browsers and devices).'),
        form.el)));
}

/** The #/password screen, for app.js's routes. */
export const passwordScreen = { render: renderPasswordScreen };
