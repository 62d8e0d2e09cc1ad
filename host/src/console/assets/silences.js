// Silences: the active, pending and expired ones, a new silence with its matchers, and expiring one.

import { api, session } from './api.js';
import { h, show, field, form, table, when, attempt, instant } from './dom.js';
import { filtersEditor } from './filters.js';

export async function page() {
  const { items } = await api('GET', '/v1/silences');
  const out = h('div', { id: 'silence-result' });
  show(
    h('h1', {}, 'Silences'),
    table(['State', 'Matchers', 'From', 'Until', 'Comment', 'By', ''], items.map((s) => [
      h('span', { class: `state-${s.state}` }, s.state),
      s.matchers.map((m) => `${m.field} ${m.op} ${m.value === undefined ? '' : JSON.stringify(m.value)}`).join(' and '),
      when(s.starts_at), when(s.ends_at), s.comment, s.created_by,
      session.can('silences', 'delete', s.created_by) && s.state !== 'expired' ? h('button', { type: 'button', class: 'secondary', onclick: async () => {
        if (await attempt(out, () => api('DELETE', `/v1/silences/${encodeURIComponent(s.id)}`))) await page();
      } }, 'Expire') : '',
    ]), 'No silences.'),
    out,
    session.can('silences', 'create') ? [h('h2', {}, 'New silence'), newSilence()] : null);
}

function newSilence() {
  const matchers = filtersEditor('matchers', 'rule.name, customer.plan, labels.region', [{ field: 'rule.name', op: '=' }]);
  const c = { starts: h('input', { type: 'datetime-local' }), ends: h('input', { type: 'datetime-local', required: true }),
    comment: h('input', { required: true }) };
  return form(async () => {
    const spec = { matchers: matchers.read(), ends_at: instant('ends_at', c.ends.value), comment: c.comment.value.trim() };
    if (c.starts.value) spec.starts_at = instant('starts_at', c.starts.value);
    await api('POST', '/v1/silences', spec);
    await page();
  },
  h('div', { class: 'field' }, h('span', { class: 'label' }, 'Matchers (all must hold)'), matchers.element),
  field('Starts', 'starts_at', c.starts, 'Empty: now.'),
  field('Ends', 'ends_at', c.ends),
  field('Comment', 'comment', c.comment, 'Why: shown in the reason of every notification it silences.'),
  h('button', { type: 'submit', id: 'create-silence' }, 'Silence'));
}
