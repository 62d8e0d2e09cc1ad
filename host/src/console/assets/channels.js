// Channels: the list, creating one of each kind, a payload preview, a real test send, and the
// webhook signing secret (shown to those who may change the channel, rotated from the page).

import { api, session } from './api.js';
import { configControls, hasSecrets } from './configform.js';
import { h, show, field, form, table, select, when, json, attempt, splitList } from './dom.js';
import { historyLink } from './audit.js';

const KINDS = [['webhook', 'Signed webhook'], ['slack', 'Slack'], ['teams', 'Microsoft Teams'], ['email', 'Email'], ['sms', 'SMS'],
  ['plugin', 'A channel plugin']];

export async function page([id, action]) {
  if (id === 'new') return channelForm(null);
  if (id && action === 'edit') return channelForm(await api('GET', `/v1/channels/${encodeURIComponent(id)}`));
  if (id) return detail(id);
  return list();
}

async function list() {
  const { items } = await api('GET', '/v1/channels');
  show(
    h('h1', {}, 'Channels'),
    session.can('channels', 'create') ? h('p', {}, h('a', { class: 'button', href: '#/channels/new', id: 'new-channel' }, 'New channel')) : null,
    table(['Name', 'Kind', 'Where', 'Enabled'], items.map((channel) => [
      h('a', { href: `#/channels/${encodeURIComponent(channel.id)}` }, channel.name),
      channel.kind, where(channel), channel.enabled ? 'yes' : 'no',
    ]), 'No channels yet.'));
}

/** Where a channel sends: its address, its recipients, or its plugin and the hosts it may reach. */
function where(channel) {
  if (channel.kind === 'plugin') return `${channel.plugin} → ${(channel.allow_hosts || []).join(', ')}`;
  return channel.url || (channel.to || []).join(', ');
}

/** What the API shows of a channel beyond its spec, left out when the spec is sent back. */
const SHOWN_ONLY = ['id', 'secrets', 'auth_token', 'failing_since', 'disabled_reason', 'created_by', 'created_at', 'updated_at'];

/**
 * The form for a new channel, or for editing `channel`. Its templates are checked by the server
 * as they are typed (`/v1/channels/check`), with the payload they render for the sample beside.
 */
async function channelForm(channel) {
  const spec = channel || {};
  const { items: plugins } = session.can('plugins', 'read') ? await api('GET', '/v1/plugins') : { items: [] };
  const c = {
    name: h('input', { required: true, value: spec.name }),
    kind: select(KINDS, spec.kind || 'webhook'),
    url: h('input', { type: 'url', placeholder: 'https://', value: spec.url }),
    to: h('input', { value: (spec.to || []).join(', ') }),
    subject: h('input', { value: spec.subject }),
    body: h('textarea', { spellcheck: 'false', value: spec.body }),
    text: h('textarea', { spellcheck: 'false', value: spec.text }),
    accountSid: h('input', { value: spec.sms?.account_sid }),
    from: h('input', { value: spec.sms?.from, placeholder: '+15005550006' }),
    service: h('input', { value: spec.sms?.messaging_service_sid }),
    baseUrl: h('input', { type: 'url', value: spec.sms?.base_url || 'https://api.twilio.com' }),
    authToken: h('input', { type: 'password', autocomplete: 'off', placeholder: channel ? 'kept when left empty' : '' }),
    plugin: select(plugins.filter((p) => p.kind === 'channel').map((p) => [p.name, p.name]), spec.plugin),
    config: h('textarea', { spellcheck: 'false', value: JSON.stringify(spec.config ?? {}, null, 2) }),
    secretConfig: h('textarea', { spellcheck: 'false', placeholder: channel ? 'kept when left empty' : '{"api_key": "..."}' }),
    allowHosts: h('input', { value: (spec.allow_hosts || []).join(', '), placeholder: 'events.pagerduty.com' }),
  };
  // A channel plugin's schema draws a form; its write-only properties are the channel's secrets,
  // asked one by one instead of as JSON when the schema has any.
  const secrets = { values: {}, kept: Boolean(channel), asked: false };
  const pluginConfig = h('div', {});
  const secretField = field('Secret config', 'secret_config', c.secretConfig,
    'JSON merged over the config when the plugin runs, never shown again. Given, it replaces the secrets kept.');
  if (channel) c.kind.disabled = true;
  // Each part of the form is for the kinds its `data-only` lists.
  const only = (kinds, ...fields) => fields.map((f) => { f.dataset.only = kinds; return f; });
  const parts = [
    ...only('webhook slack teams', field('URL', 'url', c.url)),
    ...only('webhook slack teams sms', field('Body template', 'body', c.body,
      'Handlebars, for example {"rule": "{{rule.name}}", "value": {{value}}} (for SMS, the text). Empty: the built-in payload.')),
    ...only('email sms', field('Recipients', 'to', c.to, 'Comma-separated email addresses, or for SMS numbers such as +4930123456.')),
    ...only('email', field('Subject template', 'subject', c.subject, 'Empty: the built-in subject.'),
      field('Text template', 'text', c.text, 'Empty: the built-in text.')),
    ...only('sms', field('Account SID', 'sms.account_sid', c.accountSid),
      field('Auth token', 'sms.auth_token', c.authToken, 'The provider account\'s auth token, kept as a secret.'),
      field('From number', 'sms.from', c.from, 'Or leave it empty and give a messaging service.'),
      field('Messaging service SID', 'sms.messaging_service_sid', c.service),
      field('Provider URL', 'sms.base_url', c.baseUrl, 'Twilio, or any provider speaking its Messages API.')),
    ...only('plugin', field('Plugin', 'plugin', c.plugin, 'A plugin of kind channel, uploaded on the Plugins page.'),
      pluginConfig, field('Config', 'config', c.config, 'JSON, checked by the plugin when the channel is saved.'),
      secretField,
      field('Allowed hosts', 'allow_hosts', c.allowHosts, 'Comma-separated host names the plugin\'s requests may go to.')),
  ];
  const sync = () => {
    for (const part of parts) {
      part.hidden = !part.dataset.only.split(' ').includes(c.kind.value) || (part === secretField && secrets.asked);
    }
  };
  c.kind.addEventListener('change', sync);
  const drawConfig = async () => {
    pluginConfig.replaceChildren();
    secrets.values = {};
    const plugin = plugins.find((p) => p.name === c.plugin.value);
    const schema = plugin && (await api('GET', `/v1/plugins/${encodeURIComponent(plugin.name)}/versions`))
      .items.find((v) => v.version === plugin.active_version)?.config_schema;
    const controls = configControls(schema, c.config, { prefix: 'config', secrets });
    if (controls) pluginConfig.replaceChildren(controls);
    secrets.asked = hasSecrets(schema);
    sync();
  };
  c.plugin.addEventListener('change', drawConfig);
  await drawConfig();
  const live = h('div', { id: 'live-preview' });
  const specOf = () => {
    const out = { ...spec, name: c.name.value.trim(), kind: c.kind.value };
    for (const key of [...SHOWN_ONLY, 'url', 'to', 'subject', 'body', 'text', 'sms', 'plugin', 'config', 'allow_hosts']) delete out[key];
    const kind = c.kind.value;
    if (kind === 'email' || kind === 'sms') out.to = splitList(c.to.value);
    if (kind === 'email') {
      if (c.subject.value.trim()) out.subject = c.subject.value;
      if (c.text.value.trim()) out.text = c.text.value;
    } else if (c.body.value.trim()) {
      out.body = c.body.value;
    }
    if (['webhook', 'slack', 'teams'].includes(kind)) out.url = c.url.value.trim();
    if (kind === 'plugin') Object.assign(out, pluginSpec(c, secrets));
    if (kind === 'sms') {
      out.sms = { base_url: c.baseUrl.value.trim(), account_sid: c.accountSid.value.trim() };
      if (c.from.value.trim()) out.sms.from = c.from.value.trim();
      if (c.service.value.trim()) out.sms.messaging_service_sid = c.service.value.trim();
      if (c.authToken.value) out.sms.auth_token = c.authToken.value;
    }
    return out;
  };
  const formEl = form(async () => {
    const saved = channel
      ? await api('PUT', `/v1/channels/${encodeURIComponent(channel.id)}`, specOf())
      : await api('POST', '/v1/channels', specOf());
    location.hash = `#/channels/${encodeURIComponent(saved.id)}`;
  },
  field('Name', 'name', c.name), field('Kind', 'kind', c.kind), parts,
  h('button', { type: 'submit' }, channel ? 'Save channel' : 'Create channel'), live);
  // The strict check as the author types: an error at the template being typed, or the
  // payload the sample renders to. Only the answer to the newest check is shown.
  let timer = null;
  let asked = 0;
  for (const control of [c.body, c.subject, c.text]) {
    control.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const mine = ++asked;
        const own = control.dataset.field;
        try {
          const result = await api('POST', '/v1/channels/check', specOf());
          if (mine !== asked) return;
          setError(formEl, own, '');
          live.replaceChildren(...samplePreview(result));
        } catch (failure) {
          if (mine !== asked) return;
          const here = (failure.field || '') === own || (failure.field || '').startsWith(`${own}.`);
          setError(formEl, own, here ? failure.message : '');
          if (here) live.replaceChildren();
        }
      }, 300);
    });
  }
  show(h('h1', {}, channel ? `Edit ${channel.name}` : 'New channel'), formEl);
  c.name.focus();
}

/** A plugin channel's part of the spec: its plugin, config, hosts and (when given) secrets. */
function pluginSpec(c, secrets) {
  const parse = (path, text) => {
    try { return JSON.parse(text); } catch (error) { throw { field: path, message: `not JSON: ${error.message}` }; }
  };
  const out = { plugin: c.plugin.value, config: parse('config', c.config.value || '{}'), allow_hosts: splitList(c.allowHosts.value) };
  const given = secrets.asked ? secrets.values : c.secretConfig.value.trim() ? parse('secret_config', c.secretConfig.value) : {};
  if (Object.keys(given).length) out.secret_config = given;
  return out;
}

/** Shows `message` (or nothing) at the control of `path`, leaving the focus where it is. */
function setError(formEl, path, message) {
  formEl.querySelector(`[data-error-for="${CSS.escape(path)}"]`).textContent = message;
  const control = formEl.querySelector(`[data-field="${CSS.escape(path)}"]`);
  if (message) control.setAttribute('aria-invalid', 'true'); else control.removeAttribute('aria-invalid');
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
      if (result) preview.replaceChildren(...samplePreview(result));
    } }, 'Preview'),
    session.can('channels', 'test', channel.created_by) ? h('button', { type: 'button', id: 'test-button', onclick: async () => {
      test.replaceChildren(h('p', { class: 'muted' }, 'Sending…'));
      const result = await attempt(test, () => api('POST', `${path}/test`));
      if (result) test.replaceChildren(h('h2', {}, 'Test send'), ...placeholderNote(result.placeholders), attemptView(result.attempt));
    } }, 'Send test') : null,
    session.can('channels', 'update', channel.created_by) && channel.kind === 'webhook' ? h('button', { type: 'button', class: 'secondary', id: 'rotate-button', onclick: async () => {
      const rotated = await attempt(secrets, () => api('POST', `${path}/rotate-secret`, {}));
      if (rotated) showSecrets(rotated.secrets);
    } }, 'Rotate secret') : null);
  show(
    h('h1', {}, channel.name),
    historyLink(id),
    h('p', {}, `${channel.kind} · ${where(channel)} · ${channel.enabled ? 'enabled' : 'disabled'}`),
    channel.disabled_reason ? h('p', { class: 'notice' }, channel.disabled_reason) : null,
    session.can('channels', 'update', channel.created_by) ? h('p', {}, h('a', { class: 'button', id: 'edit-channel', href: `#/channels/${encodeURIComponent(id)}/edit` }, 'Edit')) : null,
    actions, test, preview, secrets,
    h('h2', {}, 'Definition'), json(channel));
}

/** What a channel renders for the sample notification (a preview or check answer). */
function samplePreview({ payload, placeholders }) {
  return [h('h2', {}, 'Preview (sample notification)'), ...placeholderNote(placeholders),
    payload.segments ? h('p', { class: 'muted', id: 'segments' }, `${payload.segments} SMS segment(s)`) : null,
    payload.body !== undefined ? h('pre', { class: 'payload' }, payload.body) : json(payload)].filter(Boolean);
}

/** A note of the custom fields and event properties the sample made up for the templates. */
function placeholderNote(placeholders) {
  const made = Object.entries(placeholders || {});
  if (!made.length) return [];
  return [h('p', { class: 'muted placeholders' }, 'Placeholder values for the fields the templates name: ',
    made.map(([path, value], i) => [i ? ', ' : '', h('code', {}, `${path} = ${JSON.stringify(value)}`)]))];
}

export function attemptView(a) {
  return table(['Status', 'Verdict', 'Duration', 'At', 'Response'], [[
    h('span', { class: 'attempt-status' }, a.status_code ?? a.error ?? ''), a.verdict,
    `${Math.round(a.duration_ms)} ms`, when(a.at), h('code', {}, a.response || ''),
  ]], '');
}
