// The audit trail: the tenant's changes (or, for the platform admin, the platform's), filtered
// by actor, kind of object or object, a page at a time; and the link each object's page has to
// its own history (`#/audit/<object id>`).

import { api, session } from './api.js';
import { h, show, field, form, table, when } from './dom.js';

/** The tenant's trail; `#/audit/<id>` is one object's history. */
export function page([object]) {
  return trail('/v1/audit', 'Audit trail', object);
}

/** The platform admin's trail: tenants and their limits. */
export function platform([object]) {
  return trail('/v1/admin/audit', 'Platform audit trail', object);
}

/** A link to the history of the object `id`, for those who may read the trail. */
export function historyLink(id) {
  return session.can('audit', 'read')
    ? h('a', { class: 'button secondary', id: 'history', href: `#/audit/${encodeURIComponent(id)}` }, 'History')
    : null;
}

async function trail(path, title, object) {
  const c = {
    actor: h('input', { placeholder: 'key_…' }),
    resource: h('input', { placeholder: 'rules, channels, keys, …' }),
    object: h('input', { value: object || '' }),
  };
  const results = h('div', { id: 'audit-entries' });
  const more = h('p', {});
  const load = async (before) => {
    const query = new URLSearchParams();
    for (const [name, control] of Object.entries(c)) if (control.value.trim()) query.set(name, control.value.trim());
    if (before) query.set('before', before);
    const { items, next_before: next } = await api('GET', `${path}?${query}`);
    const rows = table(['When', 'Who', 'Operation', 'Object', 'Changes'], items.map((entry) => [
      when(entry.at),
      [entry.actor.kind, entry.actor.id ? ` ${entry.actor.id}` : '', entry.address ? ` (${entry.address})` : ''].join(''),
      h('code', {}, entry.operation),
      entry.object || '',
      h('ul', { class: 'changes' }, entry.changes.map((change) =>
        h('li', {}, h('code', {}, change.field), ': ', shown(change.old), ' → ', shown(change.new)))),
    ]), before ? '' : 'No changes match.');
    if (before) results.append(rows); else results.replaceChildren(rows);
    more.replaceChildren(next
      ? h('button', { type: 'button', class: 'secondary', id: 'older', onclick: () => load(next) }, 'Older')
      : '');
  };
  show(
    h('h1', {}, object ? `History of ${object}` : title),
    form(() => load(null),
      h('div', { class: 'filters' }, field('Actor', 'actor', c.actor), field('Kind', 'resource', c.resource),
        field('Object', 'object', c.object)),
      h('button', { type: 'submit' }, 'Filter')),
    results, more);
  await load(null);
}

/** A value as the trail shows it: absent as a dash, text as it is, anything else as JSON. */
function shown(value) {
  if (value === null || value === undefined) return '—';
  return h('code', {}, typeof value === 'string' ? value : JSON.stringify(value));
}
