// The customer portal: one customer's own alerts, where they go, and what was sent, on a page
// its service embeds. It speaks to the public API with the session its token opened; the server
// keeps it to that customer whatever it asks.

import { api, session, useCsrf } from './api.js';
import { h, show, field, form, table, select, when, attempt, splitList } from './dom.js';

/** The kinds of alert this page writes (the token says which of them it allows). */
const KINDS = {
  threshold: 'Usage over a limit',
  balance: 'Usage past my prepaid balance',
  percent_change: 'Usage changing from one period to the next',
};
const WINDOWS = [['day', 'per day'], ['week', 'per week'], ['month', 'per month']];

async function start() {
  window.addEventListener('klaxon:signed-out', expired);
  const current = await api('GET', '/console/session').catch(() => null);
  if (!current || current.principal.kind !== 'customer') return expired();
  session.principal = current.principal;
  useCsrf(current.csrf);
  document.getElementById('portal-title').textContent = `Alerts from ${current.principal.tenant_name}`;
  document.getElementById('who').textContent = current.principal.customer_id;
  return page();
}

function expired() {
  show(h('h1', {}, 'This page has expired'), h('p', {}, 'Open it again from the service you came from.'));
}

async function page() {
  const [rules, channels, types, sent] = await Promise.all([
    api('GET', '/v1/rules'), api('GET', '/v1/channels'), api('GET', '/v1/event-types'),
    api('GET', '/v1/notifications?limit=20')]);
  const out = h('div', { id: 'portal-result' });
  const remove = (what, path) => h('button', { type: 'button', class: 'secondary', 'data-delete': what, onclick: async () => {
    if (await attempt(out, () => api('DELETE', path))) await page();
  } }, 'Delete');
  show(
    h('h1', {}, 'Your alerts'),
    table(['Alert', 'Kind', 'State', ''], rules.items.map((rule) => [
      rule.name, KINDS[rule.condition.kind] || rule.condition.kind,
      rule.enabled ? (rule.alerts.in_alarm ? h('span', { class: 'state-in_alarm' }, 'in alarm') : 'ok') : 'turned off',
      remove(rule.name, `/v1/rules/${encodeURIComponent(rule.id)}`),
    ]), 'No alerts yet.'),
    out,
    h('h2', {}, 'New alert'),
    channels.items.length ? alertForm(channels.items, types.items)
      : h('p', { class: 'muted', id: 'no-destination' }, 'Add somewhere for alerts to go first (below).'),
    h('h2', {}, 'Where alerts go'),
    table(['Name', 'Kind', 'To', ''], channels.items.map((c) => [
      c.name, c.kind,
      c.kind === 'webhook' ? c.url : c.to.map((address) => `${address} (${c.confirmations?.[address] || 'pending'})`).join(', '),
      remove(c.name, `/v1/channels/${encodeURIComponent(c.id)}`),
    ]), 'Nowhere yet.'),
    h('h2', {}, 'Add a destination'),
    channelForm(),
    h('h2', {}, 'Recently sent'),
    table(['When', 'Alert', 'What', 'Status'], sent.items.map((n) => [
      when(n.created_at), n.context?.rule?.name || '', n.kind, h('span', { class: `status-${n.status}` }, n.status),
    ]), 'Nothing sent yet.'));
}

/** A new alert about this customer: a metric of one event type, and what to compare it with. */
function alertForm(channels, types) {
  const kinds = session.principal.allowed.filter((kind) => KINDS[kind]);
  const c = {
    name: h('input', { required: true }),
    kind: select(kinds.map((k) => [k, KINDS[k]]), kinds[0]),
    type: select(types.map((t) => [t.type, t.type]), types[0]?.type),
    property: h('input', { placeholder: 'empty: count the events' }),
    value: h('input', { inputmode: 'decimal' }),
    window: select(WINDOWS, 'month'),
    balance: h('input', { placeholder: 'prepaid_credits' }),
    direction: select([['up', 'grows'], ['down', 'shrinks']], 'up'),
    percent: h('input', { inputmode: 'decimal', value: '20' }),
    channels: channels.map((ch) => [ch.id, h('input', { type: 'checkbox', checked: true }), ch.name]),
  };
  const only = (kind, ...nodes) => h('div', { 'data-kind': kind }, ...nodes);
  const parts = [
    only('threshold', field('More than', 'condition.value', c.value), field('Counted', 'condition.window', c.window)),
    only('balance', field('The balance field', 'condition.balance_field', c.balance, 'The field of your account holding the balance.')),
    only('percent_change', field('When usage', 'condition.direction', c.direction),
      field('By at least (%)', 'condition.percent', c.percent)),
  ];
  const showKind = () => { for (const part of parts) part.hidden = part.dataset.kind !== c.kind.value; };
  c.kind.addEventListener('change', showKind);
  showKind();
  return form(async () => {
    const metric = { event_types: [c.type.value], aggregate: c.property.value.trim() ? 'sum' : 'count' };
    if (c.property.value.trim()) metric.property = c.property.value.trim();
    const number = (input, path) => {
      const value = Number(input.value);
      if (input.value.trim() === '' || Number.isNaN(value)) throw { field: path, message: 'enter a number' };
      return value;
    };
    const condition = { threshold: () => ({ kind: 'threshold', metric, operator: '>', value: number(c.value, 'condition.value'), window: { calendar: c.window.value } }),
      balance: () => ({ kind: 'balance', metric, balance_field: c.balance.value.trim() }),
      percent_change: () => ({ kind: 'percent_change', metric, direction: c.direction.value,
        percent: number(c.percent, 'condition.percent'), window: { calendar: c.window.value } }) }[c.kind.value]();
    await api('POST', '/v1/rules', {
      name: c.name.value.trim(), condition, notify_on_resolve: true,
      scope: { type: 'customer', customer_id: session.principal.customer_id },
      channels: c.channels.filter(([, box]) => box.checked).map(([id]) => id),
    });
    await page();
  },
  field('Name', 'name', c.name), field('Alert me on', 'condition.kind', c.kind),
  field('Usage of', 'condition.metric.event_types[0]', c.type), field('Adding up', 'condition.metric.property', c.property),
  parts,
  h('div', { class: 'field' }, h('span', { class: 'label' }, 'Send to'),
    c.channels.map(([, box, name]) => h('label', { class: 'row' }, box, name)),
    h('span', { class: 'error', 'data-error-for': 'channels', role: 'alert' })),
  h('button', { type: 'submit', id: 'create-alert' }, 'Create alert'));
}

/** A webhook URL or email addresses (each confirmed by a link before anything goes there). */
function channelForm() {
  const c = { name: h('input', { required: true }), kind: select([['webhook', 'Webhook'], ['email', 'Email']], 'webhook'),
    url: h('input', { type: 'url', placeholder: 'https://example.com/hooks/alerts' }), to: h('input', { placeholder: 'me@example.com' }) };
  return form(async () => {
    const spec = { name: c.name.value.trim(), kind: c.kind.value };
    if (spec.kind === 'webhook') spec.url = c.url.value.trim(); else spec.to = splitList(c.to.value);
    await api('POST', '/v1/channels', spec);
    await page();
  },
  field('Name', 'name', c.name), field('Kind', 'kind', c.kind), field('Webhook URL', 'url', c.url),
  field('Email addresses', 'to', c.to, 'Comma-separated. Each gets a link to confirm before any alert is sent to it.'),
  h('button', { type: 'submit', id: 'create-destination' }, 'Add'));
}

start();
