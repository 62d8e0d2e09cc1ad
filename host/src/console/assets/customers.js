// Customers and cohorts: each customer's fields, activity and cohort membership; each cohort's
// definition and members.

import { api } from './api.js';
import { h, show, field, form, table, when, json } from './dom.js';
import { historyLink } from './audit.js';

const PAGE = 100;

export async function customers([id]) {
  if (id) return customer(id);
  return customerList(null);
}

async function customerList(after) {
  const query = new URLSearchParams({ limit: PAGE });
  if (after) query.set('after', after);
  const { items, next_after } = await api('GET', `/v1/customers?${query}`);
  const wanted = h('input', {});
  show(
    h('h1', {}, 'Customers'),
    form(async () => { location.hash = `#/customers/${encodeURIComponent(wanted.value.trim())}`; },
      h('div', { class: 'filters' }, field('Customer id', 'id', wanted), h('button', { type: 'submit' }, 'Open'))),
    table(['Id', 'Name', 'Last seen', 'Fields'], items.map((c) => [
      h('a', { href: `#/customers/${encodeURIComponent(c.id)}` }, c.id), c.name ?? '', when(c.last_seen),
      Object.entries(c.fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' · '),
    ]), 'No customers yet: they appear with their first event or upsert.'),
    next_after ? h('button', { type: 'button', class: 'secondary', onclick: () => customerList(next_after) }, 'Next') : null);
}

async function customer(id) {
  const path = `/v1/customers/${encodeURIComponent(id)}`;
  const [c, memberships] = await Promise.all([api('GET', path), api('GET', `${path}/cohorts`)]);
  show(
    h('h1', {}, c.name ? `${c.name} (${c.id})` : c.id),
    historyLink(id),
    h('p', {}, `First seen ${when(c.first_seen) || 'never'} · last seen ${when(c.last_seen) || 'never'} · updated ${when(c.updated_at)}`),
    h('h2', {}, 'Fields'),
    table(['Field', 'Value'], Object.entries(c.fields).map(([k, v]) => [k, JSON.stringify(v)]), 'No fields.'),
    h('h2', {}, 'Activity'),
    table(['Event type', 'Events', 'First', 'Last'], Object.entries(c.activity || {}).map(([type, a]) => [
      type, a.count, when(a.first_seen), when(a.last_seen),
    ]), 'No events yet.'),
    h('h2', {}, 'Cohorts'),
    h('div', { id: 'memberships' }, table(['Cohort', 'Since'], memberships.items.map((m) => [
      h('a', { href: `#/cohorts/${encodeURIComponent(m.cohort_id)}` }, m.name), when(m.entered_at),
    ]), 'In no cohort.')));
}

export async function cohorts([id]) {
  if (id) return cohort(id, null);
  const { items } = await api('GET', '/v1/cohorts');
  show(
    h('h1', {}, 'Cohorts'),
    table(['Name', 'Status', 'Computed', 'Description'], items.map((c) => [
      h('a', { href: `#/cohorts/${encodeURIComponent(c.id)}` }, c.name), c.status, when(c.computed_at), c.description ?? '',
    ]), 'No cohorts yet.'));
}

async function cohort(id, after) {
  const path = `/v1/cohorts/${encodeURIComponent(id)}`;
  const query = new URLSearchParams({ limit: PAGE });
  if (after) query.set('after', after);
  const [c, members] = await Promise.all([api('GET', path), api('GET', `${path}/members?${query}`)]);
  show(
    h('h1', {}, c.name),
    historyLink(id),
    h('p', { id: 'cohort-status' }, `${c.members} members · ${c.status}${c.computed_at ? ` · computed ${when(c.computed_at)}` : ''}`),
    h('h2', {}, 'Members'),
    table(['Customer', 'Name', 'Since'], members.items.map((m) => [
      h('a', { href: `#/customers/${encodeURIComponent(m.customer_id)}` }, m.customer_id), m.name ?? '', when(m.entered_at),
    ]), 'No members.'),
    members.next_after ? h('button', { type: 'button', class: 'secondary', onclick: () => cohort(id, members.next_after) }, 'Next') : null,
    h('h2', {}, 'Definition'), json({ filters: c.filters, criteria: c.criteria, timezone: c.timezone }));
}
