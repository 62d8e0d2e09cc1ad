// Incidents and maintenances: the list, opening one, and each one's timeline and updates.

import { api, session } from './api.js';
import { h, show, field, form, table, select, when, instant, splitList } from './dom.js';

const SEVERITIES = [['', 'the default'], ['info', 'info'], ['warning', 'warning'], ['critical', 'critical']];
const NEXT = {
  incident: ['investigating', 'identified', 'monitoring', 'resolved'],
  maintenance: ['scheduled', 'in_progress', 'resolved'],
};

export async function page([id]) {
  if (id) return detail(id);
  const [{ items }, { items: categories }] = await Promise.all([api('GET', '/v1/incidents'), api('GET', '/v1/categories')]);
  show(
    h('h1', {}, 'Incidents'),
    table(['Opened', 'Kind', 'Title', 'Category', 'Severity', 'Status'], items.map((i) => [
      h('a', { href: `#/incidents/${encodeURIComponent(i.id)}` }, when(i.created_at)), i.kind, i.title, i.category, i.severity,
      h('span', { class: `status-${i.status}` }, i.status),
    ]), 'No incidents.'),
    session.canWrite ? [h('h2', {}, 'Open an incident or schedule a maintenance'), newIncident(categories)] : null);
}

function newIncident(categories) {
  const c = {
    kind: select([['incident', 'incident'], ['maintenance', 'maintenance']], 'incident'),
    title: h('input', { required: true }),
    category: select(categories.map((cat) => [cat.name, cat.name]), categories[0]?.name),
    severity: select(SEVERITIES, ''),
    components: h('input', {}),
    message: h('textarea', {}),
    starts: h('input', { type: 'datetime-local' }),
    ends: h('input', { type: 'datetime-local' }),
  };
  const window = [field('Starts', 'starts_at', c.starts), field('Ends', 'ends_at', c.ends)];
  const sync = () => { for (const f of window) f.hidden = c.kind.value !== 'maintenance'; };
  c.kind.addEventListener('change', sync);
  sync();
  return form(async () => {
    const spec = { kind: c.kind.value, title: c.title.value.trim(), category: c.category.value };
    if (c.severity.value) spec.severity = c.severity.value;
    const components = splitList(c.components.value);
    if (components.length) spec.components = components;
    if (c.message.value.trim()) spec.message = c.message.value.trim();
    if (spec.kind === 'maintenance') {
      spec.starts_at = instant('starts_at', c.starts.value);
      spec.ends_at = instant('ends_at', c.ends.value);
    }
    const incident = await api('POST', '/v1/incidents', spec);
    location.hash = `#/incidents/${encodeURIComponent(incident.id)}`;
  },
  field('Kind', 'kind', c.kind), field('Title', 'title', c.title),
  field('Category', 'category', c.category, 'Its subscribers are told of every update.'),
  field('Severity', 'severity', c.severity), field('Components', 'components', c.components, 'Comma-separated, optional.'),
  field('Message', 'message', c.message), window,
  h('button', { type: 'submit' }, 'Open'));
}

async function detail(id) {
  const path = `/v1/incidents/${encodeURIComponent(id)}`;
  const incident = await api('GET', path);
  const open = incident.status !== 'resolved';
  const status = select([['', 'unchanged'], ...NEXT[incident.kind].map((s) => [s, s])], '');
  const message = h('textarea', {});
  show(
    h('h1', {}, incident.title),
    h('p', {}, `${incident.kind} · ${incident.category} · ${incident.severity} · `,
      h('span', { id: 'incident-status', class: `status-${incident.status}` }, incident.status),
      incident.components?.length ? ` · ${incident.components.join(', ')}` : ''),
    incident.source ? h('p', { class: 'muted' }, `Opened by Klaxon for ${incident.source}`) : null,
    h('h2', {}, 'Timeline'),
    h('div', { id: 'timeline' }, table(['At', 'Status', 'Message', 'By', 'Notification'], incident.timeline.map((t) => [
      when(t.at), t.previous_status ? `${t.previous_status} → ${t.status}` : t.status, t.message ?? '', t.by,
      t.notification_id ? h('a', { href: `#/notifications/${encodeURIComponent(t.notification_id)}` }, 'sent') : '',
    ]), 'No updates.')),
    session.canWrite && open ? [h('h2', {}, 'Post an update'), form(async () => {
      const update = {};
      if (status.value) update.status = status.value;
      if (message.value.trim()) update.message = message.value.trim();
      await api('POST', `${path}/updates`, update);
      await detail(id);
    }, field('New status', 'status', status), field('Message', 'message', message),
    h('button', { type: 'submit', id: 'post-update' }, 'Post update'))] : null);
}
