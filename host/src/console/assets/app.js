// The console's shell: signing in and out, the navigation, and which page shows.

import { api, session, useCsrf } from './api.js';
import { h, show, field, form } from './dom.js';
import * as overview from './overview.js';
import * as rules from './rules.js';
import * as channels from './channels.js';
import * as notifications from './notifications.js';
import * as incidents from './incidents.js';
import * as subscriptions from './subscriptions.js';
import * as silences from './silences.js';
import * as customers from './customers.js';
import * as plugins from './plugins.js';
import * as keys from './keys.js';
import * as tenants from './tenants.js';
import * as audit from './audit.js';

/** The pages a tenant's key sees, by their hash, each shown when the role may read its resource. */
const PAGES = {
  overview: ['Overview', overview.page, 'notifications'],
  rules: ['Rules', rules.page, 'rules'],
  channels: ['Channels', channels.page, 'channels'],
  notifications: ['Notifications', notifications.page, 'notifications'],
  incidents: ['Incidents', incidents.page, 'incidents'],
  subscriptions: ['Subscriptions', subscriptions.page, 'subscriptions'],
  silences: ['Silences', silences.page, 'silences'],
  customers: ['Customers', customers.customers, 'customers'],
  cohorts: ['Cohorts', customers.cohorts, 'cohorts'],
  plugins: ['Plugins', plugins.page, 'plugins'],
  keys: ['API keys', keys.page, 'keys'],
  roles: ['Roles', keys.roles, 'roles'],
  audit: ['Audit', audit.page, 'audit'],
};
/** The platform admin's pages. */
const ADMIN_PAGES = { tenants: ['Tenants', tenants.page], audit: ['Audit', audit.platform] };

async function start() {
  window.addEventListener('hashchange', route);
  window.addEventListener('klaxon:signed-out', (event) => signInForm(event.detail));
  try {
    signedIn(await api('GET', '/console/session'));
  } catch {
    signInForm();
  }
}

function signInForm(reason) {
  session.principal = null;
  useCsrf(null);
  document.getElementById('nav').replaceChildren();
  document.getElementById('who').replaceChildren();
  const token = h('input', { type: 'password', autocomplete: 'off', required: true });
  show(
    h('h1', {}, 'Sign in'),
    reason ? h('p', { class: 'notice' }, reason) : null,
    form(async () => {
      signedIn(await api('POST', '/console/session', { token: token.value }));
    },
    field('API key or platform admin token', 'token', token, 'The session lasts 8 hours; the key is not kept in the browser.'),
    h('button', { type: 'submit' }, 'Sign in')));
  token.focus();
}

function signedIn(current) {
  session.principal = current.principal;
  useCsrf(current.csrf);
  const who = current.principal.kind === 'platform_admin'
    ? 'platform admin'
    : `${current.principal.tenant_name} · ${current.principal.role}`;
  document.getElementById('who').replaceChildren(
    h('span', { id: 'whoami' }, who),
    h('button', { class: 'secondary', type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out'));
  if (!location.hash || location.hash === '#/') location.hash = current.principal.kind === 'platform_admin' ? '#/tenants' : '#/overview';
  else route();
}

async function signOut() {
  await api('DELETE', '/console/session');
  location.hash = '#/';
  signInForm('Signed out.');
}

async function route() {
  if (!session.principal) return;
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const nav = document.getElementById('nav');
  const admin = session.principal.kind === 'platform_admin';
  const pages = Object.entries(admin ? ADMIN_PAGES : PAGES)
    .filter(([, [, , resource]]) => !resource || session.can(resource, 'read'));
  nav.replaceChildren(...pages.map(([key, [title]]) =>
    h('a', { href: `#/${key}`, 'aria-current': key === name ? 'page' : false }, title)));
  if (!pages.length) {
    show(h('h1', {}, 'Nothing to show'), h('p', {}, `The role ${session.principal.role} reads nothing the console shows.`));
    return;
  }
  const entry = Object.fromEntries(pages)[name];
  if (!entry) { location.hash = `#/${pages[0][0]}`; return; }
  try {
    await entry[1](rest.map(decodeURIComponent));
    // The page shows its data and takes input: the moment the console benchmark measures.
    performance.mark('klaxon:ready', { detail: name });
  } catch (failure) {
    show(h('h1', {}, entry[0]), h('p', { class: 'error', role: 'alert' }, failure.message));
  }
}

start();
