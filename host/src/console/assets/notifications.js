// The notification history: filters, each notification's payload and every attempt, resend.

import { api, session } from './api.js';
import { h, show, field, form, table, select, when, json, attempt, instant, local } from './dom.js';
import { attemptView } from './channels.js';

const STATUSES = [['', 'any'], ...['queued', 'retrying', 'delivered', 'failed', 'unrouted', 'silenced', 'held',
  'digested', 'grouped'].map((s) => [s, s])];
const KINDS = [['', 'any'], ...['alarm', 'reminder', 'resolved', 'step', 'match', 'offset', 'cohort', 'incident', 'maintenance', 'digest', 'group'].map((k) => [k, k])];

export async function page([id]) {
  if (id) return detail(id);
  return list(new URLSearchParams(location.hash.split('?')[1] || ''));
}

async function list(filters) {
  const query = new URLSearchParams();
  for (const [name, value] of filters) if (value) query.set(name, value);
  const { items, next_before } = await api('GET', `/v1/notifications?${query}`);
  const c = {
    rule_id: h('input', { value: filters.get('rule_id') || '' }),
    customer_id: h('input', { value: filters.get('customer_id') || '' }),
    status: select(STATUSES, filters.get('status') || ''),
    kind: select(KINDS, filters.get('kind') || ''),
    since: h('input', { type: 'datetime-local', value: local(filters.get('since')) }),
    until: h('input', { type: 'datetime-local', value: local(filters.get('until')) }),
  };
  const filterForm = form(async () => {
    const next = new URLSearchParams();
    for (const [name, control] of Object.entries(c)) {
      if (!control.value.trim()) continue;
      next.set(name, control.type === 'datetime-local' ? instant(name, control.value) : control.value.trim());
    }
    await list(next);
  },
  h('div', { class: 'filters' }, field('Rule id', 'rule_id', c.rule_id), field('Customer id', 'customer_id', c.customer_id),
    field('Status', 'status', c.status), field('Kind', 'kind', c.kind), field('Since', 'since', c.since),
    field('Until', 'until', c.until), h('button', { type: 'submit' }, 'Filter')));
  const more = next_before ? h('button', { type: 'button', class: 'secondary', onclick: () => {
    const next = new URLSearchParams(query);
    next.set('before', next_before);
    list(next);
  } }, 'Older') : null;
  show(
    h('h1', {}, 'Notifications'),
    filterForm,
    table(['Created', 'Kind', 'Rule', 'Customer', 'Status'], items.map((n) => [
      h('a', { href: `#/notifications/${encodeURIComponent(n.id)}` }, when(n.created_at)),
      n.kind, n.context?.rule?.name ?? n.rule_id ?? '', n.customer_id ?? '',
      h('span', { class: `status-${n.status}` }, n.status),
    ]), 'No notifications match.'),
    more);
}

async function detail(id) {
  const path = `/v1/notifications/${encodeURIComponent(id)}`;
  const [notification, attempts] = await Promise.all([api('GET', path), api('GET', `${path}/attempts`)]);
  const resent = h('div', { id: 'resent' });
  show(
    h('h1', {}, `${notification.kind}: ${notification.context?.rule?.name ?? notification.id}`),
    h('p', {}, `Status `, h('span', { class: `status-${notification.status}`, id: 'notification-status' }, notification.status),
      ` · created ${when(notification.created_at)}`),
    session.can('notifications', 'resend') ? h('p', {}, h('button', { type: 'button', id: 'resend-button', onclick: async () => {
      const answer = await attempt(resent, () => api('POST', `${path}/resend`, {}));
      if (answer) resent.replaceChildren(h('p', { class: 'notice' }, `Resent: ${JSON.stringify(answer)}`));
    } }, 'Resend')) : null,
    resent,
    h('h2', {}, 'Attempts'),
    attempts.items.length === 0 ? h('p', { class: 'muted' }, 'No attempt yet.')
      : h('div', { id: 'attempts' }, attempts.items.map((a) => [h('p', { class: 'muted' }, `to ${a.channel_id}`), attemptView(a)])),
    h('h2', {}, 'Context'), json(notification.context),
    h('h2', {}, 'Record'), json(notification));
}
