// Subscriptions: who hears of which category on which channels, as a matrix (a row per
// subscription, a column per category), and a subscription's own grid of category × channel.

import { api, session } from './api.js';
import { h, show, field, form, table, select } from './dom.js';

const SEVERITIES = [['info', 'info'], ['warning', 'warning'], ['critical', 'critical']];

/** What the page reads besides subscriptions; a role that may not read one sees the page without it. */
const BESIDE = [['categories', '/v1/categories'], ['channels', '/v1/channels'], ['recipients', '/v1/recipients']];

export async function page([id]) {
  const [{ items }, { items: categories }, { items: channels }, { items: recipients }] = await Promise.all([
    api('GET', '/v1/subscriptions'),
    ...BESIDE.map(([resource, path]) => session.can(resource, 'read') ? api('GET', path) : { items: [] }),
  ]);
  const unread = BESIDE.map(([resource]) => resource).filter((resource) => !session.can(resource, 'read'));
  const note = unread.length === 0 ? null
    : h('p', { class: 'notice', id: 'unreadable' }, `Your role may not read ${unread.join(' or ')}: they are shown by id, or not at all.`);
  const names = Object.fromEntries(channels.map((c) => [c.id, c.name]));
  const who = (s) => s.group ? `group ${s.group}` : recipients.find((r) => r.id === s.recipient)?.name ?? s.recipient;
  if (id) return edit(id === 'new' ? null : items.find((s) => s.id === id), categories, channels, recipients, note);
  show(
    h('h1', {}, 'Subscriptions'), note,
    session.can('subscriptions', 'create') ? h('p', {}, h('a', { class: 'button', href: '#/subscriptions/new' }, 'New subscription')) : null,
    h('div', { id: 'matrix' }, table(['Subscription', 'For', 'From', ...categories.map((c) => c.name)], items.map((s) => [
      h('a', { href: `#/subscriptions/${encodeURIComponent(s.id)}` }, s.name), who(s), s.min_severity + (s.enabled ? '' : ' (off)'),
      ...categories.map((c) => (s.channels[c.name] || []).map((channel) => names[channel] ?? channel).join(', ')),
    ]), 'No subscriptions.')));
}

function edit(existing, categories, channels, recipients, note) {
  const groups = [...new Set(recipients.flatMap((r) => r.groups || []))].sort();
  const audience = [...groups.map((g) => [`group:${g}`, `group ${g}`]), ...recipients.map((r) => [`recipient:${r.id}`, r.name])];
  const current = existing ? (existing.group ? `group:${existing.group}` : `recipient:${existing.recipient}`) : audience[0]?.[0];
  const c = {
    name: h('input', { required: true, value: existing?.name ?? '' }),
    audience: select(audience, current),
    severity: select(SEVERITIES, existing?.min_severity ?? 'info'),
    enabled: h('input', { type: 'checkbox', checked: existing ? existing.enabled : true }),
  };
  const boxes = categories.map((cat) => [cat.name, channels.map((ch) => [ch.id, h('input', {
    type: 'checkbox', 'aria-label': `${cat.name} to ${ch.name}`, checked: (existing?.channels[cat.name] || []).includes(ch.id),
  })])]);
  const grid = h('table', { class: 'matrix', 'data-field': 'channels' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Category'), channels.map((ch) => h('th', { scope: 'col' }, ch.name)))),
    h('tbody', {}, boxes.map(([cat, row]) => h('tr', {}, h('th', { scope: 'row' }, cat), row.map(([, box]) => h('td', {}, box))))));
  show(h('h1', {}, existing ? existing.name : 'New subscription'), note, form(async () => {
    if (!c.audience.value) {
      throw { field: c.audience.dataset.field, message: 'add a recipient first (Recipients in the API): a subscription is for a group or one recipient' };
    }
    const [kind, target] = c.audience.value.split(/:(.*)/s);
    const spec = { ...(existing || {}), name: c.name.value.trim(), min_severity: c.severity.value, enabled: c.enabled.checked };
    for (const key of ['id', 'created_by', 'created_at', 'updated_at', 'group', 'recipient']) delete spec[key];
    spec[kind] = target;
    spec.channels = Object.fromEntries(boxes.map(([cat, row]) => [cat, row.filter(([, box]) => box.checked).map(([ch]) => ch)])
      .filter(([, picked]) => picked.length > 0));
    const saved = existing
      ? await api('PUT', `/v1/subscriptions/${encodeURIComponent(existing.id)}`, spec)
      : await api('POST', '/v1/subscriptions', spec);
    location.hash = '#/subscriptions';
    return saved;
  },
  field('Name', 'name', c.name),
  field('For', existing?.recipient ? 'recipient' : 'group', c.audience, 'A group of recipients, or one recipient.'),
  field('From severity', 'min_severity', c.severity),
  h('label', { class: 'row' }, c.enabled, 'Enabled'),
  h('div', { class: 'field' }, h('span', { class: 'label' }, 'Which categories go to which channels'), grid,
    h('span', { class: 'error', 'data-error-for': 'channels', role: 'alert' })),
  (existing ? session.can('subscriptions', 'update', existing.created_by) : session.can('subscriptions', 'create')) ? h('button', { type: 'submit', id: 'save-subscription' }, 'Save') : null));
}
