// @ts-check
// Why this file exists: the entry point. It reads the hash route (#/doctor, #/explorer/12,
// ...), checks that the signed-in role may open it, draws the header and navigation for
// that role (and the account actions every role has: two-step sign-in, change password,
// sign out), warns staff whose sign-in is still one step, and hands the main area to the
// screen's module.

import { ApiError, get, post, session, scheduleRefresh, setFlash } from './api.js';
import { h, put, button, ROLE_LABEL } from './ui.js';
import * as login from './login.js';
import * as doctor from './doctor.js';
import * as patient from './patient.js';
import * as pharmacy from './pharmacy.js';
import * as department from './department.js';
import * as explorer from './explorer.js';
import * as metrics from './metrics.js';
import { passwordScreen } from './login.js';
import { mfaScreen, setupBanner } from './mfa.js';

/**
 * What a signed-in screen's render gets besides its main element.
 * @typedef {object} ScreenContext
 * @property {import('./api.js').Session} session
 * @property {import('./api.js').Me | null} me null when /api/me could not be read
 * @property {string[]} args the route's parts after its name (#/explorer/12: ['12'])
 * @property {typeof navigate} navigate
 */

/**
 * A screen module: render draws into `main` and may return what to undo on leaving
 * (timers, listeners).
 * @typedef {{ render: (main: HTMLElement, ctx: ScreenContext) => (() => void) | void }} Screen
 */

/**
 * Route name -> screen and the roles that may open it. Sign-in is not here: it is the one
 * screen without a session.
 * @type {Record<string, { view: Screen, roles: import('./api.js').Role[] }>}
 */
const ROUTES = {
  doctor: { view: doctor, roles: ['doctor'] },
  patient: { view: patient, roles: ['patient'] },
  pharmacy: { view: pharmacy, roles: ['pharmacy'] },
  department: { view: department, roles: ['department'] },
  explorer: { view: explorer, roles: ['department'] },
  metrics: { view: metrics, roles: ['department'] },
  password: { view: passwordScreen, roles: ['doctor', 'patient', 'pharmacy', 'department'] },
  mfa: { view: mfaScreen, roles: ['doctor', 'patient', 'pharmacy', 'department'] },
};

/** @type {Record<string, Array<[string, string]>>} [route, label] of each role's links */
const NAV = {
  doctor: [['doctor', 'Patients']],
  patient: [['patient', 'My record']],
  pharmacy: [['pharmacy', 'Dispensing']],
  department: [['department', 'Department'], ['explorer', 'Chain explorer'], ['metrics', 'Metrics']],
};

const app = /** @type {HTMLElement} */ (document.getElementById('app'));
/** @type {(() => void) | null} */
let cleanup = null;
/** @type {import('./api.js').Me | null} */
let me = null; // GET /api/me of the current session
let renderSeq = 0; // a newer navigation wins over a slower older one

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || '', args: parts.slice(1) };
}

/**
 * Go to a route (drawn again if it is the current one).
 * @param {string} name
 * @param {...(string | number)} args
 */
export function navigate(name, ...args) {
  const target = `#/${[name, ...args].map((p) => encodeURIComponent(p)).join('/')}`;
  if (location.hash === target) render();
  else location.hash = target;
}

/**
 * The header: the role's navigation (the current route marked) and who is signed in.
 * @param {import('./api.js').Session} s
 * @param {string} active
 */
function header(s, active) {
  const links = (NAV[s.role] || []).map(([route, label]) =>
    h('a', {
      href: `#/${route}`,
      class: route === active
        ? 'rounded-md bg-teal-50 px-3 py-2 text-sm font-semibold text-teal-900 ring-1 ring-inset ring-teal-200'
        : 'rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100 hover:text-slate-900',
      'aria-current': route === active ? 'page' : null,
    }, label));
  const signOut = button('Sign out', { variant: 'secondary', small: true, onClick: logout });
  /** @param {string} route @param {string} id @param {string} label */
  const accountLink = (route, id, label) => h('a', {
    href: `#/${route}`,
    id,
    class: active === route
      ? 'whitespace-nowrap rounded-md bg-teal-50 px-2.5 py-1 text-sm font-medium text-teal-900 ring-1 ring-inset ring-teal-200'
      : 'whitespace-nowrap rounded-md px-2.5 py-1 text-sm font-medium text-slate-700 ring-1 ring-inset ring-slate-300 hover:bg-slate-50',
    'aria-current': active === route ? 'page' : null,
  }, label);
  const changePassword = accountLink('password', 'change-password', 'Change password');
  const twoStep = accountLink('mfa', 'two-step', 'Two-step sign-in');
  return h('header', { class: 'border-b border-slate-200 bg-white' },
    h('div', { class: 'mx-auto flex max-w-7xl flex-wrap items-center gap-x-6 gap-y-3 px-4 py-3 sm:px-6' },
      h('a', { href: `#/${s.role}`, class: 'flex items-center gap-2 text-lg font-semibold text-slate-900' },
        logo(), 'MedChain'),
      h('nav', { 'aria-label': 'Main', class: 'flex flex-wrap gap-1' }, links),
      h('div', { class: 'ml-auto flex items-center gap-3 text-sm' },
        h('div', { class: 'text-right leading-tight' },
          h('p', { class: 'font-medium text-slate-900', id: 'whoami' }, s.display_name || s.user_id),
          h('p', { class: 'text-slate-600' },
            [ROLE_LABEL[s.role] || s.role, s.department, me && me.organisation_name].filter(Boolean).join(' · '))),
        twoStep, changePassword, signOut)));
}

function logo() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'size-7 text-teal-700');
  svg.setAttribute('aria-hidden', 'true');
  const rect = document.createElementNS(ns, 'rect');
  for (const [k, v] of Object.entries({ x: 2, y: 2, width: 20, height: 20, rx: 5, fill: 'currentColor' })) rect.setAttribute(k, String(v));
  const cross = document.createElementNS(ns, 'path');
  cross.setAttribute('d', 'M10 6h4v4h4v4h-4v4h-4v-4H6v-4h4z');
  cross.setAttribute('fill', '#fff');
  svg.append(rect, cross);
  return svg;
}

async function logout() {
  const s = session.get();
  try {
    if (s) await post('/api/logout', { refresh_token: s.refresh_token });
  } catch {
    // signing out locally is what matters
  }
  session.clear();
  me = null;
  setFlash('info', 'You have signed out.');
  navigate('login');
}

/** Draw the screen of the current hash route (or send the user where they may go). */
async function render() {
  if (cleanup) {
    try { cleanup(); } catch { /* a screen's cleanup must not stop navigation */ }
    cleanup = null;
  }
  const seq = ++renderSeq;
  const { name, args } = parseHash();
  const s = session.get();
  if (!s) {
    me = null;
    if (name !== 'login') return navigate('login');
  } else if (!Object.hasOwn(ROUTES, name) || !ROUTES[name].roles.includes(s.role)) {
    return navigate(s.role);
  }
  const main = h('main', { id: 'main', tabindex: '-1', class: 'mx-auto w-full max-w-7xl flex-1 px-4 py-6 sm:px-6' });
  if (!s) {
    put(app, main);
    login.render(main, { navigate });
  } else {
    if (!me || me.user_id !== s.user_id) {
      // Check the stored session before showing anything; a 401 here lands on login.
      try {
        me = await get('/api/me');
      } catch (e) {
        if (e instanceof ApiError && e.expired) return;
        me = null;
      }
      if (seq !== renderSeq) return;
    }
    const banner = name === 'mfa' ? null : await setupBanner(s);
    if (seq !== renderSeq) return;
    put(app, header(s, name), banner, main,
      h('footer', { class: 'border-t border-slate-200 bg-white px-6 py-3 text-center text-xs text-slate-600' },
        'MedChain · records on a PBFT ledger shared by the participating organisations'));
    cleanup = ROUTES[name].view.render(main, { session: s, me, args, navigate }) || null;
  }
  const title = main.querySelector('[data-page-title]');
  document.title = title ? `${title.textContent} · MedChain` : 'MedChain';
  if (title instanceof HTMLElement && document.activeElement === document.body) title.focus({ preventScroll: true });
}

window.addEventListener('hashchange', () => render());

// The skip link must not change the hash (that is the router's): it moves focus instead.
/** @type {HTMLElement} */ (document.getElementById('skip-link')).addEventListener('click', (ev) => {
  ev.preventDefault();
  const main = document.getElementById('main');
  if (main) main.focus();
});

scheduleRefresh();
render();
