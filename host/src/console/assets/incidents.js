// Incidents and maintenances: the list, opening one, and each one's timeline and updates.

import { api, session, ApiFailure } from './api.js';
import { h, show, field, form, table, select, when, instant, splitList } from './dom.js';
import { historyLink } from './audit.js';

const SEVERITIES = [['', 'the default'], ['info', 'info'], ['warning', 'warning'], ['critical', 'critical']];
const NEXT = {
  incident: ['investigating', 'identified', 'monitoring', 'resolved'],
  maintenance: ['scheduled', 'in_progress', 'resolved'],
};

export async function page([id]) {
  if (id) return detail(id);
  const [{ items }, { items: categories }, statusPage] = await Promise.all([
    api('GET', '/v1/incidents'), api('GET', '/v1/categories'),
    api('GET', '/v1/status-page').catch((e) => { if (e instanceof ApiFailure && e.status === 404) return null; throw e; }),
  ]);
  show(
    h('h1', {}, 'Incidents'),
    table(['Opened', 'Kind', 'Title', 'Category', 'Severity', 'Status', 'Public'], items.map((i) => [
      h('a', { href: `#/incidents/${encodeURIComponent(i.id)}` }, when(i.created_at)), i.kind, i.title, i.category, i.severity,
      h('span', { class: `status-${i.status}` }, i.status), i.public ? 'yes' : 'no',
    ]), 'No incidents.'),
    session.can('incidents', 'create') ? [h('h2', {}, 'Open an incident or schedule a maintenance'), newIncident(categories)] : null,
    h('h2', {}, 'Public status page'), statusPageSection(statusPage));
}

/** The status page's settings: shown to everyone, edited by editors and admins. */
function statusPageSection(current) {
  const address = current?.enabled ? h('p', {}, 'Published at ',
    h('a', { id: 'status-page-link', href: `/status/${encodeURIComponent(current.slug)}` }, `/status/${current.slug}`)) :
    h('p', { class: 'muted' }, current ? 'Not published (disabled).' : 'No status page yet.');
  if (!session.can('status-page', 'update')) return address;
  const c = {
    enabled: h('input', { type: 'checkbox', checked: current ? current.enabled : true }),
    slug: h('input', { value: current?.slug ?? '' }),
    title: h('input', { value: current?.title ?? '' }),
    components: h('textarea', {}),
    history: h('input', { type: 'number', min: 1, max: 365, value: current?.history_days ?? 90 }),
  };
  c.components.value = (current?.components ?? []).map((x) => (x.group ? `${x.group} / ${x.name}` : x.name)).join('\n');
  const settings = form(async () => {
    const components = c.components.value.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => {
      const at = line.lastIndexOf(' / ');
      return at < 0 ? { name: line } : { group: line.slice(0, at).trim(), name: line.slice(at + 3).trim() };
    });
    await api('PUT', '/v1/status-page', {
      enabled: c.enabled.checked, slug: c.slug.value.trim(), title: c.title.value.trim(), components,
      history_days: Number(c.history.value),
    });
    await page([]);
  },
  field('Published', 'enabled', c.enabled),
  field('Address', 'slug', c.slug, 'The page is /status/<address>: lowercase letters, digits and -.'),
  field('Title', 'title', c.title),
  field('Components', 'components', c.components,
    'One per line; "Group / Name" puts it in a group. Incidents name these in their components.'),
  field('Days of history', 'history_days', c.history),
  h('button', { type: 'submit', id: 'save-status-page' }, 'Save status page'));
  settings.id = 'status-page-form';
  return [address, settings];
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
    public: select([['', 'by category'], ['true', 'yes'], ['false', 'no']], ''),
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
    if (c.public.value) spec.public = c.public.value === 'true';
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
  field('On the status page', 'public', c.public,
    'By category: infrastructure and billing incidents are public; configuration ones never are.'),
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
    historyLink(id),
    h('p', {}, `${incident.kind} · ${incident.category} · ${incident.severity} · `,
      h('span', { id: 'incident-status', class: `status-${incident.status}` }, incident.status),
      incident.components?.length ? ` · ${incident.components.join(', ')}` : '',
      incident.public ? ' · public' : ' · internal'),
    incident.source ? h('p', { class: 'muted' }, `Opened by Klaxon for ${incident.source}`) : null,
    h('h2', {}, 'Timeline'),
    h('div', { id: 'timeline' }, table(['At', 'Status', 'Message', 'By', 'Notification'], incident.timeline.map((t) => [
      when(t.at), t.previous_status ? `${t.previous_status} → ${t.status}` : t.status, t.message ?? '', t.by,
      t.notification_id ? h('a', { href: `#/notifications/${encodeURIComponent(t.notification_id)}` }, 'sent') : '',
    ]), 'No updates.')),
    session.can('incidents', 'update') && open ? [h('h2', {}, 'Post an update'), form(async () => {
      const update = {};
      if (status.value) update.status = status.value;
      if (message.value.trim()) update.message = message.value.trim();
      await api('POST', `${path}/updates`, update);
      await detail(id);
    }, field('New status', 'status', status), field('Message', 'message', message),
    h('button', { type: 'submit', id: 'post-update' }, 'Post update'))] : null);
}
