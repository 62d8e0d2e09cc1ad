// The platform admin's page: the tenants, a new tenant (with its first admin key, shown once),
// and deleting one.

import { api } from './api.js';
import { h, show, field, form, table, when, attempt } from './dom.js';

export async function page(_path, created) {
  const { items } = await api('GET', '/v1/tenants');
  const out = h('div', { id: 'tenant-result' });
  const name = h('input', { required: true });
  show(
    h('h1', {}, 'Tenants'),
    created ? h('div', { class: 'notice', id: 'new-tenant' }, h('p', {}, `${created.tenant.name}'s first admin key, shown this once:`),
      h('code', { id: 'new-tenant-key' }, created.admin_key.token)) : null,
    table(['Name', 'Id', 'Created', 'Plugin limits', ''], items.map((tenant) => [
      tenant.name, h('code', {}, tenant.id), when(tenant.created_at),
      `${tenant.plugin_limits.fuel} fuel · ${tenant.plugin_limits.time_ms} ms · ${Math.round(tenant.plugin_limits.memory_bytes / 1048576)} MiB`,
      h('button', { type: 'button', class: 'secondary', onclick: async () => {
        if (!window.confirm(`Delete ${tenant.name} with all its data?`)) return;
        if (await attempt(out, () => api('DELETE', `/v1/tenants/${encodeURIComponent(tenant.id)}`))) await page([]);
      } }, 'Delete'),
    ]), 'No tenants yet.'),
    out,
    h('h2', {}, 'New tenant'),
    form(async () => { await page([], await api('POST', '/v1/tenants', { name: name.value.trim() })); },
      field('Name', 'name', name), h('button', { type: 'submit', id: 'create-tenant' }, 'Create tenant')));
}
