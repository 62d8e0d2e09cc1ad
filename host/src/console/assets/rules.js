// Rules: the list, a form per condition kind, and each rule's alert states and their history.

import { api, session } from './api.js';
import { h, show, field, form, table, select, when, json } from './dom.js';

const SEVERITIES = [['info', 'info'], ['warning', 'warning'], ['critical', 'critical']];
const AGGREGATES = [['count', 'count of events'], ['sum', 'sum of a property'], ['avg', 'average of a property'],
  ['min', 'minimum of a property'], ['max', 'maximum of a property']];
const OPERATORS = [['>', 'above'], ['>=', 'at least'], ['<', 'below'], ['<=', 'at most']];
const WINDOWS = [['calendar:hour', 'this hour'], ['calendar:day', 'today'], ['calendar:week', 'this week'],
  ['calendar:month', 'this month'], ['calendar:quarter', 'this quarter'], ['rolling', 'a rolling window']];
const SCOPES = [['each', 'each customer on its own'], ['all', 'all customers together'], ['customer', 'one customer']];

export async function page([id]) {
  if (id === 'new') return newRule();
  if (id) return detail(id);
  return list();
}

async function list() {
  const { items } = await api('GET', '/v1/rules');
  show(
    h('h1', {}, 'Rules'),
    session.canWrite ? h('p', {}, h('a', { class: 'button', href: '#/rules/new', id: 'new-rule' }, 'New rule')) : null,
    table(['Name', 'Condition', 'Scope', 'Severity', 'Enabled'], items.map((rule) => [
      h('a', { href: `#/rules/${encodeURIComponent(rule.id)}` }, rule.name),
      rule.condition.kind, rule.scope.type, rule.severity, rule.enabled ? 'yes' : 'no',
    ]), 'No rules yet.'));
}

async function newRule() {
  const { items: channels } = await api('GET', '/v1/channels');
  const c = {
    name: h('input', { required: true }),
    severity: select(SEVERITIES, 'warning'),
    category: h('input', {}),
    scope: select(SCOPES, 'each'),
    customer: h('input', {}),
    eventTypes: h('input', { required: true }),
    aggregate: select(AGGREGATES, 'count'),
    property: h('input', {}),
    window: select(WINDOWS, 'calendar:week'),
    rolling: h('input', { value: '7d' }),
    operator: select(OPERATORS, '>'),
    value: h('input', { inputmode: 'decimal', required: true }),
    resolve: h('input', { type: 'checkbox' }),
  };
  const picks = channels.map((channel) => [channel.id, h('input', { type: 'checkbox', value: channel.id })]);
  const customerField = field('Customer id', 'scope.customer_id', c.customer);
  const propertyField = field('Property', 'condition.metric.property', c.property, 'The numeric event property to aggregate.');
  const rollingField = field('Rolling window', 'condition.window.rolling', c.rolling, 'For example 7d, 24h or 30m.');
  const sync = () => {
    customerField.hidden = c.scope.value !== 'customer';
    propertyField.hidden = c.aggregate.value === 'count';
    rollingField.hidden = c.window.value !== 'rolling';
  };
  for (const control of [c.scope, c.aggregate, c.window]) control.addEventListener('change', sync);
  sync();

  show(h('h1', {}, 'New rule'), form(async () => {
    const window = c.window.value === 'rolling' ? { rolling: c.rolling.value.trim() }
      : { calendar: c.window.value.split(':')[1] };
    const metric = { event_types: splitList(c.eventTypes.value), aggregate: c.aggregate.value };
    if (c.aggregate.value !== 'count' && c.property.value.trim()) metric.property = c.property.value.trim();
    const scope = c.scope.value === 'customer' ? { type: 'customer', customer_id: c.customer.value.trim() }
      : { type: c.scope.value };
    const spec = {
      name: c.name.value.trim(),
      severity: c.severity.value,
      scope,
      condition: { kind: 'threshold', metric, window, operator: c.operator.value, value: number('condition.value', c.value.value) },
      channels: picks.filter(([, box]) => box.checked).map(([channelId]) => channelId),
      notify_on_resolve: c.resolve.checked,
    };
    if (c.category.value.trim()) spec.category = c.category.value.trim();
    const rule = await api('POST', '/v1/rules', spec);
    location.hash = `#/rules/${encodeURIComponent(rule.id)}`;
  },
  h('p', { class: 'muted' }, 'A threshold on a metered aggregate: it goes in alarm when the aggregate over the window crosses the value, and back to ok when it no longer does.'),
  field('Name', 'name', c.name),
  field('Severity', 'severity', c.severity),
  field('Category', 'category', c.category, 'Optional; subscriptions route by category.'),
  field('Scope', 'scope', c.scope),
  customerField,
  field('Event types', 'condition.metric.event_types', c.eventTypes, 'Comma-separated, for example: usage, api_call'),
  field('Aggregate', 'condition.metric.aggregate', c.aggregate),
  propertyField,
  field('Window', 'condition.window', c.window),
  rollingField,
  field('Operator', 'condition.operator', c.operator),
  field('Value', 'condition.value', c.value),
  h('fieldset', { 'data-field': 'channels' }, h('legend', {}, 'Channels'),
    channels.length === 0 ? h('p', { class: 'muted' }, 'No channels yet: notifications are kept in the history only.') : null,
    picks.map(([channelId, box]) => h('label', { class: 'row' }, box, channels.find((x) => x.id === channelId).name)),
    h('span', { class: 'error', 'data-error-for': 'channels', role: 'alert' })),
  h('label', { class: 'row' }, c.resolve, 'Also notify when the alert resolves'),
  h('button', { type: 'submit' }, 'Create rule')));
  c.name.focus();
}

async function detail(id) {
  const [rule, states] = await Promise.all([
    api('GET', `/v1/rules/${encodeURIComponent(id)}`),
    api('GET', `/v1/rules/${encodeURIComponent(id)}/states`),
  ]);
  const counts = {};
  for (const s of states.items) counts[s.state] = (counts[s.state] || 0) + 1;
  const customer = h('input', {});
  const dryRunOut = h('div', { id: 'dry-run' });
  show(
    h('h1', {}, rule.name),
    h('p', { id: 'state-counts' }, `${counts.in_alarm || 0} in alarm · ${counts.ok || 0} ok · ${counts.evaluating || 0} evaluating`),
    h('h2', {}, 'Alert states'),
    table(['Scope key', 'State', 'Since', 'Value', 'Threshold'], states.items.map((s) => [
      s.scope_key, h('span', { class: `state-${s.state}` }, s.state), when(s.since), s.value ?? '', s.threshold ?? '',
    ]), 'No alert has been evaluated yet.'),
    h('h2', {}, 'Transitions'),
    table(['At', 'Scope key', 'From', 'To', 'Value'], states.transitions.map((t) => [
      when(t.at), t.scope_key, t.previous, t.current, t.value ?? '',
    ]), 'No transitions yet.'),
    h('h2', {}, 'Dry run'),
    form(async () => {
      const body = customer.value.trim() ? { customer_id: customer.value.trim() } : {};
      const { items } = await api('POST', `/v1/rules/${encodeURIComponent(id)}/evaluate`, body);
      dryRunOut.replaceChildren(table(['Scope key', 'State', 'Would notify', 'Outcome'], items.map((r) => [
        r.scope_key, r.state, r.would_notify ? 'yes' : 'no', JSON.stringify(r),
      ]), 'Nothing in scope.'));
    },
    field('Customer id', 'customer_id', customer, 'What would this rule say for this customer now? Empty: the whole scope.'),
    h('button', { type: 'submit' }, 'Evaluate now'), dryRunOut),
    h('h2', {}, 'Definition'),
    json(rule));
}

function splitList(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The number typed into the field `path`, or an error shown at that field. */
function number(path, text) {
  const value = Number(text.trim());
  if (text.trim() === '' || Number.isNaN(value)) throw { field: path, message: 'must be a number' };
  return value;
}
