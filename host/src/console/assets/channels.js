// Channels: the list, creating one of each kind, a payload preview, a real test send, and the
// webhook signing secret (shown to those who may change the channel, rotated from the page).

import { api, session } from './api.js';
import { h, show, field, form, table, select, when, json, attempt } from './dom.js';

const KINDS = [['webhook', 'Signed webhook'], ['slack', 'Slack'], ['teams', 'Microsoft Teams'], ['email', 'Email']];

export async function page([id]) {
  if (id === 'new') return newChannel();
  if (id) return detail(id);
  return list();
}

async function list() {
  const { items } = await api('GET', '/v1/channels');
  show(
    h('h1', {}, 'Channels'),
    session.canWrite ? h('p', {}, h('a', { class: 'button', href: '#/channels/new', id: 'new-channel' }, 'New channel')) : null,
    table(['Name', 'Kind', 'Where', 'Enabled'], items.map((channel) => [
      h('a', { href: `#/channels/${encodeURIComponent(channel.id)}` }, channel.name),
      channel.kind, channel.url || (channel.to || []).join(', '), channel.enabled ? 'yes' : 'no',
    ]), 'No channels yet.'));
}

async function newChannel() {
  const c = {
    name: h('input', { required: true }),
    kind: select(KINDS, 'webhook'),
    url: h('input', { type: 'url', placeholder: 'https://' }),
    to: h('input', {}),
    body: h('textarea', { spellcheck: 'false' }),
  };
  const urlField = field('URL', 'url', c.url);
  const toField = field('Recipients', 'to', c.to, 'Comma-separated email addresses.');
  const bodyField = field('Body template', 'body', c.body,
    'Handlebars, for example {"rule": "{{rule.name}}", "value": {{value}}}. Empty: the built-in payload.');
  const sync = () => {
    const email = c.kind.value === 'email';
    urlField.hidden = email;
    toField.hidden = !email;
    bodyField.hidden = email;
  };
  c.kind.addEventListener('change', sync);
  sync();
  show(h('h1', {}, 'New channel'), form(async () => {
    const spec = { name: c.name.value.trim(), kind: c.kind.value };
    if (c.kind.value === 'email') {
      spec.to = c.to.value.split(',').map((s) => s.trim()).filter(Boolean);
    } else {
      spec.url = c.url.value.trim();
      if (c.body.value.trim()) spec.body = c.body.value;
    }
    const channel = await api('POST', '/v1/channels', spec);
    location.hash = `#/channels/${encodeURIComponent(channel.id)}`;
  },
  field('Name', 'name', c.name), field('Kind', 'kind', c.kind), urlField, toField, bodyField,
  h('button', { type: 'submit' }, 'Create channel')));
  c.name.focus();
}

async function detail(id) {
  const path = `/v1/channels/${encodeURIComponent(id)}`;
  const channel = await api('GET', path);
  const preview = h('div', { id: 'preview' });
  const test = h('div', { id: 'test-result' });
  const secrets = h('div', { id: 'secrets' });
  const showSecrets = (list) => secrets.replaceChildren(table(['Signing secret', 'Created', 'Expires'],
    list.map((s) => [h('code', {}, s.secret), when(s.created_at), when(s.expires_at) || 'never']), 'No secret.'));
  if (channel.secrets) showSecrets(channel.secrets);
  const actions = h('div', { class: 'row' },
    h('button', { type: 'button', id: 'preview-button', onclick: async () => {
      const result = await attempt(preview, () => api('POST', `${path}/preview`, {}));
      if (result) preview.replaceChildren(h('h2', {}, 'Preview (sample notification)'), payloadView(result.payload));
    } }, 'Preview'),
    session.canWrite ? h('button', { type: 'button', id: 'test-button', onclick: async () => {
      test.replaceChildren(h('p', { class: 'muted' }, 'Sending…'));
      const result = await attempt(test, () => api('POST', `${path}/test`));
      if (result) test.replaceChildren(h('h2', {}, 'Test send'), attemptView(result.attempt));
    } }, 'Send test') : null,
    session.canWrite && channel.kind === 'webhook' ? h('button', { type: 'button', class: 'secondary', id: 'rotate-button', onclick: async () => {
      const rotated = await attempt(secrets, () => api('POST', `${path}/rotate-secret`, {}));
      if (rotated) showSecrets(rotated.secrets);
    } }, 'Rotate secret') : null);
  show(
    h('h1', {}, channel.name),
    h('p', {}, `${channel.kind} · ${channel.url || (channel.to || []).join(', ')} · ${channel.enabled ? 'enabled' : 'disabled'}`),
    channel.disabled_reason ? h('p', { class: 'notice' }, channel.disabled_reason) : null,
    actions, test, preview, secrets,
    h('h2', {}, 'Definition'), json(channel));
}

export function payloadView(payload) {
  return payload.body !== undefined ? h('pre', { class: 'payload' }, payload.body) : json(payload);
}

export function attemptView(a) {
  return table(['Status', 'Verdict', 'Duration', 'At', 'Response'], [[
    h('span', { class: 'attempt-status' }, a.status_code ?? a.error ?? ''), a.verdict,
    `${Math.round(a.duration_ms)} ms`, when(a.at), h('code', {}, a.response || ''),
  ]], '');
}
