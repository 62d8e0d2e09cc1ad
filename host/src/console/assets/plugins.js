// Plugins: uploading a component, its versions, pinning, enabling, limits, and an invoke panel
// that shows the call's output or error with the fuel, time and log it took.

import { api, session } from './api.js';
import { h, show, field, form, table, select, when, json } from './dom.js';
import { historyLink } from './audit.js';

const KINDS = [['condition', 'condition'], ['template', 'template'], ['channel', 'channel']];
const LIMITS = [['fuel', 'Fuel'], ['time_ms', 'Time (ms)'], ['memory_bytes', 'Memory (bytes)'],
  ['input_bytes', 'Input (bytes)'], ['output_bytes', 'Output (bytes)']];

/** What each call is given to start from in the invoke panel. */
const SAMPLES = {
  evaluate: { rule: { id: 'rul_console', name: 'console dry run' }, customer: { id: 'cus_1', fields: {} },
    value: { current: 80, previous: 100 }, config: {} },
  validate: { function: 'validate', config: {} },
  render: { tenant: 'console', rule: { id: 'rul_console', name: 'console dry run' }, value: 80, threshold: 100,
    notification: { id: 'ntf_console', timestamp: new Date().toISOString(), url: location.origin } },
};

export async function page([name]) {
  if (name) return detail(name);
  return list();
}

async function list() {
  const { items } = await api('GET', '/v1/plugins');
  show(
    h('h1', {}, 'Plugins'),
    table(['Name', 'Kind', 'Version in use', 'Enabled', 'Updated'], items.map((p) => [
      h('a', { href: `#/plugins/${encodeURIComponent(p.name)}` }, p.name),
      p.kind, p.pinned_version ? `${p.active_version} (pinned)` : p.active_version, p.enabled ? 'yes' : 'no', when(p.updated_at),
    ]), 'No plugins yet.'),
    session.can('plugins', 'create') ? [h('h2', {}, 'Upload a component'), uploadForm()] : null);
}

/** Uploads a component as a new plugin, or as a new version of `existing`. */
function uploadForm(existing) {
  const c = { name: h('input', { required: true }), kind: select(KINDS, 'condition'),
    file: h('input', { type: 'file', accept: '.wasm,application/wasm', required: true }) };
  return form(async () => {
    const name = existing ? existing.name : c.name.value.trim();
    const kind = existing ? existing.kind : c.kind.value;
    const file = c.file.files[0];
    if (!name) throw { field: 'name', message: 'give the plugin a name' };
    if (!file) throw { field: 'component', message: 'choose a component (.wasm) to upload' };
    const query = new URLSearchParams({ name, kind });
    await api('POST', `/v1/plugins?${query}`, new Blob([file], { type: 'application/wasm' }));
    location.hash = `#/plugins/${encodeURIComponent(name)}`;
    if (existing) await detail(name);
  },
  existing ? null : [field('Name', 'name', c.name), field('Kind', 'kind', c.kind)],
  field('Component', 'component', c.file, 'A WebAssembly component built against the klaxon:plugin WIT world.'),
  h('button', { type: 'submit', id: existing ? 'upload-version' : 'upload-plugin' }, existing ? 'Upload a new version' : 'Upload'));
}

async function detail(name) {
  const path = `/v1/plugins/${encodeURIComponent(name)}`;
  const [plugin, versions, log] = await Promise.all([api('GET', path), api('GET', `${path}/versions`), api('GET', `${path}/logs?limit=20`)]);
  const patch = async (change) => { await api('PATCH', path, change); await detail(name); };
  show(
    h('h1', {}, plugin.name),
    historyLink(name),
    h('p', { id: 'plugin-status' }, `${plugin.kind} · version ${plugin.active_version} in use`,
      plugin.pinned_version ? ' (pinned)' : ' (the latest)', ` · ${plugin.enabled ? 'enabled' : 'disabled'}`),
    session.can('plugins', 'update', plugin.created_by) ? h('div', { class: 'row' },
      h('button', { type: 'button', class: 'secondary', id: 'toggle-enabled', onclick: () => patch({ enabled: !plugin.enabled }) },
        plugin.enabled ? 'Disable' : 'Enable')) : null,
    h('h2', {}, 'Versions'),
    table(['Version', 'WIT', 'Uploaded', 'Size', 'SHA-256', 'Imports', ''], versions.items.map((v) => [
      v.version, v.wit_version, `${when(v.uploaded_at)} by ${v.uploaded_by}`, `${Math.round(v.size_bytes / 1024)} KiB`,
      h('code', {}, v.sha256.slice(0, 16)), v.imports.join(', '),
      pinControl(plugin, v.version, patch),
    ]), 'No versions.'),
    configSchema(plugin, versions.items),
    session.can('plugins', 'update', plugin.created_by) ? uploadForm(plugin) : null,
    h('h2', {}, 'Limits'), limitsForm(plugin, patch),
    session.can('plugins', 'test', plugin.created_by) && plugin.enabled ? [h('h2', {}, 'Invoke'), invokePanel(plugin, path)] : null,
    h('h2', {}, 'Recent log'),
    h('div', { id: 'plugin-log' }, table(['At', 'Level', 'Call', 'Message'], log.items.map((line) => [
      when(line.at), line.level, `${line.function} v${line.version}`, line.message,
    ]), 'Nothing logged yet.')));
}

/** The JSON Schema of the config the version in use takes, when it publishes one. */
function configSchema(plugin, versions) {
  const schema = versions.find((v) => v.version === plugin.active_version)?.config_schema;
  return schema ? [h('h2', {}, 'Config schema'), h('div', { id: 'config-schema' }, json(schema))] : null;
}

function pinControl(plugin, version, patch) {
  if (plugin.pinned_version === version) {
    return session.can('plugins', 'update', plugin.created_by) ? h('button', { type: 'button', class: 'secondary', onclick: () => patch({ pinned_version: null }) },
      'Unpin (follow the latest)') : 'pinned';
  }
  if (!session.can('plugins', 'update', plugin.created_by) || (!plugin.pinned_version && version === plugin.active_version)) {
    return version === plugin.active_version ? 'in use' : '';
  }
  return h('button', { type: 'button', class: 'secondary', 'data-pin': version, onclick: () => patch({ pinned_version: version }) },
    `Pin version ${version}`);
}

/** The plugin's own limits (each at most the tenant's), beside the limits its calls get. */
function limitsForm(plugin, patch) {
  const inputs = LIMITS.map(([key]) => [key, h('input', { inputmode: 'numeric', value: plugin.limits?.[key] ?? '',
    placeholder: String(plugin.effective_limits[key]), disabled: !session.can('plugins', 'update', plugin.created_by) })]);
  return form(async () => {
    const limits = {};
    for (const [key, input] of inputs) {
      const text = input.value.trim();
      if (!text) continue;
      const value = Number(text);
      if (!Number.isInteger(value) || value < 1) throw { field: `limits.${key}`, message: 'must be a whole number above 0' };
      limits[key] = value;
    }
    await patch({ limits });
  },
  h('p', { class: 'muted' }, 'Empty: the tenant\'s limit. The grey figure is what a call gets now.'),
  h('div', { class: 'filters' }, inputs.map(([key, input]) => field(LIMITS.find(([k]) => k === key)[1], `limits.${key}`, input))),
  session.can('plugins', 'update', plugin.created_by) ? h('button', { type: 'submit', id: 'save-limits' }, 'Save limits') : null);
}

function invokePanel(plugin, path) {
  const calls = plugin.kind === 'condition' ? [['evaluate', 'evaluate'], ['validate', 'validate a config']] : [['render', 'render']];
  const call = select(calls, calls[0][0]);
  const input = h('textarea', { spellcheck: 'false', rows: 10 });
  const fill = () => { input.value = JSON.stringify(SAMPLES[call.value], null, 2); };
  call.addEventListener('change', fill);
  fill();
  const out = h('div', { id: 'invoke-result' });
  return form(async () => {
    let body;
    try { body = JSON.parse(input.value); } catch (error) { throw { field: 'input', message: `not JSON: ${error.message}` }; }
    let report;
    try {
      report = await api('POST', `${path}/invoke`, body);
    } catch (failure) {
      if (!failure.body || failure.body.fuel_used === undefined) throw failure;
      report = failure.body;
    }
    out.replaceChildren(reportView(report));
  },
  field('Call', 'function', call), field('Input', 'input', input, 'JSON: the evaluation, the config to validate, or the context to render.'),
  h('button', { type: 'submit', id: 'invoke-button' }, 'Invoke'), out);
}

function reportView(report) {
  const logs = report.logs || [];
  return h('div', {},
    h('p', { id: 'invoke-figures' }, `${report.error ? 'Failed' : 'Succeeded'} · ${report.fuel_used} fuel · ${report.duration_us} µs`),
    report.error ? h('p', { class: 'error', role: 'alert' }, `${report.error.code}: ${report.error.message}`)
      : h('div', { id: 'invoke-output' }, json(report.output)),
    h('h3', {}, 'Log'),
    table(['Level', 'Message'], logs.map((line) => [line.level, line.message]), 'The plugin logged nothing.'));
}
