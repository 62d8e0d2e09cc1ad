// API keys: the tenant's keys and their roles, a new key (its token shown once) and revoking one.

import { api } from './api.js';
import { h, show, field, form, table, select, when, attempt } from './dom.js';

const ROLES = [['viewer', 'viewer: reads everything'], ['editor', 'editor: changes rules, channels and plugins'],
  ['admin', 'admin: also manages keys'], ['ingest', 'ingest: sends events and customers only']];

export async function page(_path, created) {
  const { items } = await api('GET', '/v1/api-keys');
  const out = h('div', { id: 'key-result' });
  const c = { name: h('input', { required: true }), role: select(ROLES, 'viewer') };
  show(
    h('h1', {}, 'API keys'),
    created ? h('div', { class: 'notice', id: 'new-key' }, h('p', {}, `The token of ${created.name}, shown this once:`),
      h('code', { id: 'new-key-token' }, created.token)) : null,
    table(['Name', 'Role', 'Created', 'Id', ''], items.map((key) => [
      key.name, key.role, when(key.created_at), h('code', {}, key.id),
      h('button', { type: 'button', class: 'secondary', 'data-revoke': key.name, onclick: async () => {
        if (!window.confirm(`Revoke ${key.name}? Every caller and session using it stops at once.`)) return;
        if (await attempt(out, () => api('DELETE', `/v1/api-keys/${encodeURIComponent(key.id)}`))) await page([]);
      } }, 'Revoke'),
    ]), 'No keys.'),
    out,
    h('h2', {}, 'New key'),
    form(async () => {
      await page([], await api('POST', '/v1/api-keys', { name: c.name.value.trim(), role: c.role.value }));
    }, field('Name', 'name', c.name), field('Role', 'role', c.role), h('button', { type: 'submit', id: 'create-key' }, 'Create key')));
}
