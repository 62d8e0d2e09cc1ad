// API keys and roles: the tenant's keys with their roles, a new key (its token shown once),
// revoking one; the roles as lists of permissions, defining and deleting the tenant's own.

import { api, session } from './api.js';
import { h, show, field, form, table, select, when, attempt } from './dom.js';

export async function page(_path, created) {
  const [{ items }, roles] = await Promise.all([api('GET', '/v1/api-keys'), roleList()]);
  const out = h('div', { id: 'key-result' });
  const c = { name: h('input', { required: true }), role: select(roles.map((r) => [r.name, r.name]), 'viewer') };
  show(
    h('h1', {}, 'API keys'),
    created ? h('div', { class: 'notice', id: 'new-key' }, h('p', {}, `The token of ${created.name}, shown this once:`),
      h('code', { id: 'new-key-token' }, created.token)) : null,
    table(['Name', 'Role', 'Created', 'Id', ''], items.map((key) => [
      key.name, key.role, when(key.created_at), h('code', {}, key.id),
      session.can('keys', 'delete') ? h('button', { type: 'button', class: 'secondary', 'data-revoke': key.name, onclick: async () => {
        if (!window.confirm(`Revoke ${key.name}? Every caller and session using it stops at once.`)) return;
        if (await attempt(out, () => api('DELETE', `/v1/api-keys/${encodeURIComponent(key.id)}`))) await page([]);
      } }, 'Revoke') : '',
    ]), 'No keys.'),
    out,
    session.can('keys', 'create') ? [h('h2', {}, 'New key'), form(async () => {
      await page([], await api('POST', '/v1/api-keys', { name: c.name.value.trim(), role: c.role.value }));
    }, field('Name', 'name', c.name), field('Role', 'role', c.role), h('button', { type: 'submit', id: 'create-key' }, 'Create key'))] : null);
}

/** The roles a new key may take: all of them when the role may read roles, else the built-in ones' names. */
async function roleList() {
  if (session.can('roles', 'read')) return (await api('GET', '/v1/roles')).items;
  return ['viewer', 'editor', 'admin', 'ingest'].map((name) => ({ name }));
}

export async function roles() {
  const { items } = await api('GET', '/v1/roles');
  const out = h('div', { id: 'role-result' });
  const c = { name: h('input', { required: true }), description: h('input', {}),
    permissions: h('textarea', { rows: 6, placeholder: 'subscriptions:create\nsubscriptions:update:own\n*:read' }) };
  show(
    h('h1', {}, 'Roles'),
    table(['Name', 'Description', 'Permissions', ''], items.map((role) => [
      role.name, role.description, h('code', { class: 'permissions' }, role.permissions.join(' ')),
      !role.built_in && session.can('roles', 'delete') ? h('button', { type: 'button', class: 'secondary', 'data-delete-role': role.name, onclick: async () => {
        if (!window.confirm(`Delete the role ${role.name}?`)) return;
        if (await attempt(out, () => api('DELETE', `/v1/roles/${encodeURIComponent(role.name)}`))) await roles();
      } }, 'Delete') : (role.built_in ? 'built in' : ''),
    ]), 'No roles.'),
    out,
    session.can('roles', 'create') ? [h('h2', {}, 'New role'), form(async () => {
      const permissions = c.permissions.value.split(/\s+/).filter(Boolean);
      await api('POST', '/v1/roles', { name: c.name.value.trim(), description: c.description.value.trim(), permissions });
      await roles();
    }, field('Name', 'name', c.name), field('Description', 'description', c.description),
    field('Permissions', 'permissions', c.permissions, 'One per line: resource:action, or resource:action:own for what the key made; * for any.'),
    h('button', { type: 'submit', id: 'create-role' }, 'Create role'))] : null);
}
