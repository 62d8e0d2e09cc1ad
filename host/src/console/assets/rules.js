// Rules: the list with each rule's alert counts, one form (for creating and editing) whose
// condition part follows the chosen kind, and each rule's alert states and their history.

import { api, session } from './api.js';
import { h, show, field, form, showError, table, select, when, json, splitList } from './dom.js';
import { tryRule } from './backtest.js';
import { filtersEditor } from './filters.js';
import { configControls } from './configform.js';
import { historyLink } from './audit.js';
import { RANGES, chart, rangePicker } from './charts.js';

const KINDS = [['threshold', 'Threshold on an aggregate'], ['percent_change', 'Percent change against the previous window'],
  ['steps', 'Steps towards a target'], ['balance', 'Usage past a prepaid balance'],
  ['anomaly', 'An anomaly against the metric\'s history'], ['forecast', 'A forecast: at this rate, a limit reached too soon'],
  ['event_match', 'An event matching filters'],
  ['inactivity', 'No traffic for a while'], ['offset', 'A time before or after a customer date'],
  ['cohort', 'Customers entering or leaving a cohort'], ['plugin', 'A plugin condition']];
const SEVERITIES = [['info', 'info'], ['warning', 'warning'], ['critical', 'critical']];
const AGGREGATES = [['count', 'count of events'], ['sum', 'sum of a property'], ['avg', 'average of a property'],
  ['min', 'minimum of a property'], ['max', 'maximum of a property']];
const OPERATORS = [['>', 'above'], ['>=', 'at least'], ['<', 'below'], ['<=', 'at most'], ['=', 'equal to'], ['!=', 'not equal to']];
const WINDOWS = [['calendar:hour', 'this hour'], ['calendar:day', 'today'], ['calendar:week', 'this week'],
  ['calendar:month', 'this month'], ['calendar:quarter', 'this quarter'], ['rolling', 'a rolling window']];
const SCOPES = [['each', 'each customer on its own'], ['all', 'all customers together'], ['customer', 'one customer'],
  ['group', 'customers chosen by their fields']];
/** The kinds whose condition measures a metric over a window, and those with a state to resolve. */
const METERED = ['threshold', 'percent_change', 'steps', 'balance', 'forecast', 'plugin'];
const STATEFUL = ['threshold', 'percent_change', 'balance', 'anomaly', 'forecast', 'inactivity', 'plugin'];
const BUCKETS = [['5m', '5 minutes'], ['1h', 'an hour'], ['1d', 'a day']];
const SEASONALITIES = [['none', 'the buckets just before'], ['daily', 'the same bucket of previous days'],
  ['weekly', 'the same bucket of previous weeks']];
const DEVIATIONS = [['both', 'above or below'], ['up', 'above'], ['down', 'below']];
const METHODS = [['linear', 'the mean rate over the lookback'], ['holt', 'a level and a trend (Holt)']];
const BEFORES = [['period_end', 'the end of the period'], ['ahead', 'a time ahead'], ['field', 'a date in a customer field']];

export async function page([id, action]) {
  if (id === 'new') return ruleForm(null);
  if (id && action === 'edit') return ruleForm(await api('GET', `/v1/rules/${encodeURIComponent(id)}`));
  if (id) return detail(id);
  return list();
}

async function list() {
  const { items } = await api('GET', '/v1/rules');
  show(
    h('h1', {}, 'Rules'),
    session.can('rules', 'create') ? h('p', {}, h('a', { class: 'button', href: '#/rules/new', id: 'new-rule' }, 'New rule')) : null,
    table(['Name', 'Condition', 'Scope', 'Severity', 'In alarm', 'OK', 'Enabled'], items.map((rule) => [
      h('a', { href: `#/rules/${encodeURIComponent(rule.id)}` }, rule.name),
      rule.condition.kind, rule.scope.type, rule.severity,
      h('span', { class: rule.alerts.in_alarm ? 'state-in_alarm' : '' }, rule.alerts.in_alarm), rule.alerts.ok,
      rule.enabled ? 'yes' : 'no',
    ]), 'No rules yet.'));
}

/** The form for a new rule, or for editing `rule`. */
async function ruleForm(rule) {
  const [{ items: channels }, { items: categories }, { items: eventTypes }, { items: cohorts }, { items: plugins }] =
    await Promise.all(['/v1/channels', '/v1/categories', '/v1/event-types', '/v1/cohorts', '/v1/plugins'].map((p) => api('GET', p)));
  const spec = rule || {};
  const cond = spec.condition || { kind: 'threshold' };
  const metric = cond.metric || { event_types: [], aggregate: 'count' };
  const window = cond.window || { calendar: 'week' };
  const frequency = spec.frequency && spec.frequency.every ? spec.frequency.every : '';
  const c = {
    name: h('input', { required: true, value: spec.name }),
    description: h('input', { value: spec.description }),
    kind: select(KINDS, cond.kind),
    severity: select(SEVERITIES, spec.severity || 'warning'),
    category: select([['', 'none'], ...categories.map((cat) => [cat.name, cat.name])], spec.category || ''),
    scope: select(SCOPES, spec.scope?.type || 'each'),
    customer: h('input', { value: spec.scope?.customer_id }),
    eventTypes: h('input', { value: (metric.event_types || []).join(', '), list: 'event-types' }),
    inactiveTypes: h('input', { value: (cond.event_types || []).join(', '), list: 'event-types' }),
    aggregate: select(AGGREGATES, metric.aggregate),
    property: h('input', { value: metric.property }),
    window: select(WINDOWS, window.rolling ? 'rolling' : `calendar:${window.calendar}`),
    rolling: h('input', { value: window.rolling || '7d' }),
    operator: select(OPERATORS, cond.operator || '>'),
    value: h('input', { inputmode: 'decimal', value: cond.value }),
    direction: select([['down', 'down by'], ['up', 'up by']], cond.direction || 'down'),
    percent: h('input', { inputmode: 'decimal', value: cond.percent }),
    target: h('input', { inputmode: 'decimal', value: cond.target }),
    steps: h('input', { value: (cond.steps || [25, 50, 75, 90]).join(', ') }),
    balanceField: h('input', { value: cond.balance_field || 'prepaid_credits' }),
    bucket: select(BUCKETS, cond.bucket || '1h'),
    seasonality: select(SEASONALITIES, cond.seasonality || 'none'),
    history: h('input', { inputmode: 'numeric', value: cond.history ?? 8 }),
    sensitivity: h('input', { inputmode: 'decimal', value: cond.sensitivity ?? 3 }),
    deviation: select(DEVIATIONS, cond.kind === 'anomaly' ? cond.direction : 'both'),
    minHistory: h('input', { inputmode: 'numeric', value: cond.min_history ?? 3 }),
    method: select(METHODS, cond.method || 'linear'),
    lookback: h('input', { value: cond.lookback || '7d' }),
    forecastHistory: h('input', { value: cond.kind === 'forecast' ? cond.min_history : '1d' }),
    before: select(BEFORES, typeof cond.before === 'object' ? 'field' : !cond.before || cond.before === 'period_end' ? 'period_end' : 'ahead'),
    beforeText: h('input', { value: typeof cond.before === 'object' ? cond.before.field : cond.before === 'period_end' ? '' : cond.before }),
    duration: h('input', { value: cond.duration || '3d' }),
    offsetField: h('input', { value: cond.field || 'contract_end' }),
    offset: h('input', { value: cond.offset || '-7d' }),
    cohort: select(cohorts.map((x) => [x.id, x.name]), cond.cohort),
    entered: h('input', { type: 'checkbox', checked: !cond.on || cond.on.includes('entered') }),
    exited: h('input', { type: 'checkbox', checked: !cond.on || cond.on.includes('exited') }),
    batch: h('input', { value: cond.batch_interval || '15m' }),
    plugin: select(plugins.filter((p) => p.kind === 'condition').map((p) => [p.name, p.name]), cond.plugin),
    config: h('textarea', { spellcheck: 'false', value: JSON.stringify(cond.config ?? {}, null, 2) }),
    frequency: h('input', { value: frequency, placeholder: 'once' }),
    maxPerWindow: h('input', { inputmode: 'numeric', value: spec.max_per_window }),
    timezone: h('input', { value: spec.timezone || 'UTC' }),
    resolve: h('input', { type: 'checkbox', checked: spec.notify_on_resolve }),
    pendingFor: h('input', { value: spec.for, placeholder: 'at once' }),
    keepFiringFor: h('input', { value: spec.keep_firing_for, placeholder: 'no' }),
    flapChanges: h('input', { inputmode: 'numeric', value: spec.flapping?.changes, placeholder: 'off' }),
    flapWithin: h('input', { value: spec.flapping?.within || '1h' }),
    enabled: h('input', { type: 'checkbox', checked: spec.enabled ?? true }),
  };
  const scopeFilters = filtersEditor('scope.filters', 'customer.plan', spec.scope?.filters || [{ field: '', op: '=' }]);
  const metricFilters = filtersEditor('condition.metric.filters', 'event.region', metric.filters || []);
  const inactivityFilters = filtersEditor('condition.filters', 'event.region', cond.kind === 'inactivity' ? cond.filters || [] : []);
  const matches = matchesEditor(cond.kind === 'event_match' ? cond.matches : [{ event_type: '', filters: [] }]);
  const picks = channels.map((channel) => [channel.id, h('input', { type: 'checkbox', value: channel.id,
    checked: (spec.channels || []).includes(channel.id) })]);

  // A plugin that publishes its config's schema gets a form for it, above the config's JSON.
  const pluginConfig = h('div', {});
  const drawConfig = async () => {
    pluginConfig.replaceChildren();
    const plugin = plugins.find((p) => p.name === c.plugin.value);
    if (!plugin) return;
    const { items } = await api('GET', `/v1/plugins/${encodeURIComponent(plugin.name)}/versions`);
    const active = items.find((v) => v.version === plugin.active_version);
    const controls = configControls(active?.config_schema, c.config);
    if (controls) pluginConfig.replaceChildren(controls);
  };
  c.plugin.addEventListener('change', drawConfig);
  drawConfig();

  // The parts of the form each condition kind uses: `data-kinds` lists them.
  const part = (kinds, ...children) => h('div', { 'data-kinds': kinds.join(' ') }, ...children);
  const propertyField = field('Property', 'condition.metric.property', c.property, 'The numeric event property to aggregate.');
  const rollingField = field('Rolling window', 'condition.window.rolling', c.rolling, 'For example 7d, 24h or 30m.');
  const customerField = field('Customer id', 'scope.customer_id', c.customer);
  const beforeTextField = field('Ahead or field', 'condition.before.field', c.beforeText, 'A duration ahead (30d) or a customer field holding a date (contract_end).');
  const groupField = h('div', { class: 'field' }, h('span', { class: 'label' }, 'Customers whose fields match (all must hold)'), scopeFilters.element);
  const resolveRow = h('label', { class: 'row' }, c.resolve, 'Also notify when the alert resolves');
  // Alarm timing and flapping, for the conditions that enter and leave in_alarm.
  const timing = h('div', {},
    field('Pending for', 'for', c.pendingFor, 'Empty: alarm at once. For example 10m: the condition must hold that long first.'),
    field('Keep firing for', 'keep_firing_for', c.keepFiringFor, 'Empty: resolve at once. For example 15m: stay in alarm that long after it clears.'),
    field('Flapping after changes', 'flapping.changes', c.flapChanges, 'Empty: off. For example 4: that many state changes within the window below mark it flapping.'),
    field('Flapping window', 'flapping.within', c.flapWithin, 'For example 1h; stable again after this long without a change.'));
  const sync = () => {
    const kind = c.kind.value;
    for (const el of formEl.querySelectorAll('[data-kinds]')) el.hidden = !el.dataset.kinds.split(' ').includes(kind);
    propertyField.hidden = c.aggregate.value === 'count';
    rollingField.hidden = c.window.value !== 'rolling';
    beforeTextField.hidden = c.before.value === 'period_end';
    customerField.hidden = c.scope.value !== 'customer';
    groupField.hidden = c.scope.value !== 'group';
    resolveRow.hidden = !STATEFUL.includes(kind);
    timing.hidden = !STATEFUL.includes(kind);
  };

  /** The rule as the form says it. */
  const ruleBody = () => {
    const kind = c.kind.value;
    const out = {
      name: c.name.value.trim(),
      severity: c.severity.value,
      scope: scopeOf(c, scopeFilters),
      condition: conditionOf(kind, c, { metricFilters, inactivityFilters, matches }),
      channels: picks.filter(([, box]) => box.checked).map(([channelId]) => channelId),
      notify_on_resolve: STATEFUL.includes(kind) && c.resolve.checked,
      timezone: c.timezone.value.trim() || 'UTC',
      frequency: c.frequency.value.trim() ? { every: c.frequency.value.trim() } : 'once',
      enabled: c.enabled.checked,
    };
    if (c.description.value.trim()) out.description = c.description.value.trim();
    if (c.category.value) out.category = c.category.value;
    if (c.maxPerWindow.value.trim()) out.max_per_window = number('max_per_window', c.maxPerWindow.value);
    if (rule && rule.incident) out.incident = true;
    if (!timing.hidden) {
      if (c.pendingFor.value.trim()) out.for = c.pendingFor.value.trim();
      if (c.keepFiringFor.value.trim()) out.keep_firing_for = c.keepFiringFor.value.trim();
      if (c.flapChanges.value.trim()) {
        out.flapping = { changes: number('flapping.changes', c.flapChanges.value), within: c.flapWithin.value.trim() };
      }
    }
    return out;
  };
  // Trying the rule against history: its errors name the rule's fields as saving does.
  const tryDays = h('input', { inputmode: 'numeric', value: 7 });
  const tried = h('div', { id: 'backtest' });
  const tryButton = h('button', { type: 'button', id: 'try-rule' }, 'Try');
  tryButton.addEventListener('click', async () => {
    tryButton.disabled = true;
    try {
      await tryRule(ruleBody(), number('last', tryDays.value), tried);
    } catch (failure) {
      tried.replaceChildren();
      if (failure.field?.startsWith('rule.')) failure.field = failure.field.slice('rule.'.length);
      showError(formEl, failure);
    } finally {
      tryButton.disabled = false;
    }
  });

  const formEl = form(async () => {
    const out = ruleBody();
    const saved = rule
      ? await api('PUT', `/v1/rules/${encodeURIComponent(rule.id)}`, out)
      : await api('POST', '/v1/rules', out);
    location.hash = `#/rules/${encodeURIComponent(saved.id)}`;
  },
  h('datalist', { id: 'event-types' }, eventTypes.map((t) => h('option', { value: t.type }))),
  field('Name', 'name', c.name),
  field('Description', 'description', c.description),
  field('Condition', 'condition.kind', c.kind),
  part([...METERED, 'anomaly'],
    field('Event types', 'condition.metric.event_types', c.eventTypes, 'Comma-separated, for example: usage, api_call'),
    field('Aggregate', 'condition.metric.aggregate', c.aggregate), propertyField,
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Only events matching (all must hold)'), metricFilters.element)),
  part(METERED, field('Window', 'condition.window', c.window), rollingField),
  part(['anomaly'], field('Bucket', 'condition.bucket', c.bucket, 'Each complete bucket (UTC) is judged.'),
    field('Compared with', 'condition.seasonality', c.seasonality),
    field('History', 'condition.history', c.history, 'How many earlier buckets (or days, or weeks) make the expectation.'),
    field('Sensitivity', 'condition.sensitivity', c.sensitivity, 'How many robust deviations from the expectation are anomalous.'),
    field('Anomalous when', 'condition.direction', c.deviation),
    field('Minimum history', 'condition.min_history', c.minHistory, 'How much history must have been seen before it may fire.')),
  part(['threshold'], field('Operator', 'condition.operator', c.operator)),
  part(['threshold', 'forecast'], field('Value', 'condition.value', c.value)),
  part(['forecast'], field('Reached before', 'condition.before', c.before), beforeTextField,
    field('Method', 'condition.method', c.method),
    field('Lookback', 'condition.lookback', c.lookback, 'How far back the rate is read, for example 7d.'),
    field('Minimum history', 'condition.min_history', c.forecastHistory, 'How long the metric must have been seen before it may fire, for example 1d.')),
  part(['percent_change'], field('Direction', 'condition.direction', c.direction),
    field('Percent', 'condition.percent', c.percent, 'Against the same window just before.')),
  part(['steps'], field('Target', 'condition.target', c.target),
    field('Steps (percent of the target)', 'condition.steps', c.steps, 'Each fires once per window, for example 25, 50, 75, 90.')),
  part(['balance'], field('Balance field', 'condition.balance_field', c.balanceField, 'The customer field holding the prepaid credit.')),
  part(['event_match'], h('div', { class: 'field' }, h('span', { class: 'label' }, 'Any of these events (filters inside one event must all hold)'), matches.element)),
  part(['inactivity'],
    field('Event types', 'condition.event_types', c.inactiveTypes, 'Comma-separated; empty: any event.'),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Only events matching'), inactivityFilters.element),
    field('For', 'condition.duration', c.duration, 'No such event for this long, for example 3d.')),
  part(['offset'], field('Date field', 'condition.field', c.offsetField, 'A customer field holding a timestamp.'),
    field('Offset', 'condition.offset', c.offset, 'For example -7d: seven days before.')),
  part(['cohort'], field('Cohort', 'condition.cohort', c.cohort),
    h('div', { class: 'row' }, h('label', { class: 'row' }, c.entered, 'Entered'), h('label', { class: 'row' }, c.exited, 'Left')),
    field('Batch interval', 'condition.batch_interval', c.batch, 'One notification per interval, from 1m to 7d. The scope must be all customers.')),
  part(['plugin'], field('Plugin', 'condition.plugin', c.plugin), pluginConfig,
    field('Config', 'condition.config', c.config, 'JSON, checked by the plugin when the rule is saved.')),
  field('Scope', 'scope', c.scope), customerField, groupField,
  field('Severity', 'severity', c.severity),
  field('Category', 'category', c.category, 'Subscriptions to it receive the rule\'s notifications too.'),
  h('fieldset', { 'data-field': 'channels' }, h('legend', {}, 'Channels'),
    channels.length === 0 ? h('p', { class: 'muted' }, 'No channels yet: notifications are kept in the history only.') : null,
    picks.map(([channelId, box]) => h('label', { class: 'row' }, box, channels.find((x) => x.id === channelId).name)),
    h('span', { class: 'error', 'data-error-for': 'channels', role: 'alert' })),
  field('Remind every', 'frequency', c.frequency, 'Empty: notify once per alarm. For example 1h: remind while it lasts.'),
  field('At most per window', 'max_per_window', c.maxPerWindow, 'Optional cap on notifications in one window.'),
  field('Timezone', 'timezone', c.timezone, 'IANA name for calendar windows, for example Europe/Berlin.'),
  resolveRow, timing,
  h('label', { class: 'row' }, c.enabled, 'Enabled'),
  h('button', { type: 'submit' }, rule ? 'Save rule' : 'Create rule'),
  h('fieldset', {}, h('legend', {}, 'Try against history'),
    field('Days back', 'last', tryDays, 'Replays the events of the last days through this rule: nothing is saved or sent.'),
    session.can('rules', 'test') ? tryButton : h('p', { class: 'muted' }, 'Your role may not try rules.'), tried));
  for (const control of [c.kind, c.scope, c.aggregate, c.window, c.before]) control.addEventListener('change', sync);
  sync();
  show(h('h1', {}, rule ? `Edit ${rule.name}` : 'New rule'), formEl);
  c.name.focus();
}

/** The rule's scope as the form says it. */
function scopeOf(c, scopeFilters) {
  switch (c.scope.value) {
    case 'customer': return { type: 'customer', customer_id: c.customer.value.trim() };
    case 'group': return { type: 'group', filters: scopeFilters.read() };
    default: return { type: c.scope.value };
  }
}

/** The condition of kind `kind` as the form says it. */
function conditionOf(kind, c, editors) {
  const metric = () => {
    const m = { event_types: splitList(c.eventTypes.value), aggregate: c.aggregate.value };
    if (c.aggregate.value !== 'count' && c.property.value.trim()) m.property = c.property.value.trim();
    const filters = editors.metricFilters.read();
    if (filters.length) m.filters = filters;
    return m;
  };
  const window = () => c.window.value === 'rolling' ? { rolling: c.rolling.value.trim() } : { calendar: c.window.value.split(':')[1] };
  switch (kind) {
    case 'threshold':
      return { kind, metric: metric(), window: window(), operator: c.operator.value, value: number('condition.value', c.value.value) };
    case 'percent_change':
      return { kind, metric: metric(), window: window(), direction: c.direction.value, percent: number('condition.percent', c.percent.value) };
    case 'steps':
      return { kind, metric: metric(), window: window(), target: number('condition.target', c.target.value),
        steps: splitList(c.steps.value).map((s) => number('condition.steps', s)) };
    case 'balance':
      return { kind, metric: metric(), window: window(), balance_field: c.balanceField.value.trim() };
    case 'anomaly':
      return { kind, metric: metric(), bucket: c.bucket.value, seasonality: c.seasonality.value,
        history: number('condition.history', c.history.value), sensitivity: number('condition.sensitivity', c.sensitivity.value),
        direction: c.deviation.value, min_history: number('condition.min_history', c.minHistory.value) };
    case 'forecast': {
      const text = c.beforeText.value.trim();
      const before = { period_end: 'period_end', ahead: text, field: { field: text } }[c.before.value];
      return { kind, metric: metric(), window: window(), method: c.method.value, lookback: c.lookback.value.trim(),
        min_history: c.forecastHistory.value.trim(), value: number('condition.value', c.value.value), before };
    }
    case 'event_match':
      return { kind, matches: editors.matches.read() };
    case 'inactivity': {
      const out = { kind, event_types: splitList(c.inactiveTypes.value), duration: c.duration.value.trim() };
      const filters = editors.inactivityFilters.read();
      if (filters.length) out.filters = filters;
      return out;
    }
    case 'offset':
      return { kind, field: c.offsetField.value.trim(), offset: c.offset.value.trim() };
    case 'cohort': {
      const on = [c.entered.checked && 'entered', c.exited.checked && 'exited'].filter(Boolean);
      return { kind, cohort: c.cohort.value, on, batch_interval: c.batch.value.trim() };
    }
    case 'plugin': {
      let config;
      try { config = JSON.parse(c.config.value || 'null'); } catch (error) { throw { field: 'condition.config', message: `not JSON: ${error.message}` }; }
      const out = { kind, plugin: c.plugin.value, config };
      if (c.eventTypes.value.trim()) Object.assign(out, { metric: metric(), window: window() });
      return out;
    }
    default:
      throw { field: 'condition.kind', message: `unknown kind ${kind}` };
  }
}

/** Event patterns for `event_match`: any of them matches (OR), each with filters that must all hold. */
function matchesEditor(initial) {
  const list = h('div', { class: 'matches' });
  const patterns = [];
  const add = (pattern = { event_type: '', filters: [] }) => {
    const i = patterns.length;
    const type = h('input', { value: pattern.event_type, list: 'event-types' });
    const filters = filtersEditor(`condition.matches[${i}].filters`, 'event.plan, customer.seats', pattern.filters || []);
    const block = h('div', { class: 'pattern' },
      field(i === 0 ? 'Event type' : 'or event type', `condition.matches[${i}].event_type`, type), filters.element);
    patterns.push({ type, filters });
    list.append(block);
  };
  for (const pattern of initial) add(pattern);
  const element = h('div', { 'data-field': 'condition.matches' }, list,
    h('button', { type: 'button', class: 'secondary', id: 'add-pattern', onclick: () => add() }, 'Or another event'),
    h('span', { class: 'error', 'data-error-for': 'condition.matches', role: 'alert' }));
  const read = () => patterns.map(({ type, filters }) => {
    const pattern = { event_type: type.value.trim() };
    const typed = filters.read();
    if (typed.length) pattern.filters = typed;
    return pattern;
  });
  return { element, read };
}

async function detail(id) {
  const [rule, states] = await Promise.all([
    api('GET', `/v1/rules/${encodeURIComponent(id)}`),
    api('GET', `/v1/rules/${encodeURIComponent(id)}/states`),
  ]);
  const customer = h('input', {});
  const dryRunOut = h('div', { id: 'dry-run' });
  const alarms = h('div', {});
  await drawAlarms(id, alarms, 'day');
  show(
    h('h1', {}, rule.name),
    historyLink(id),
    h('p', { id: 'state-counts' }, `${rule.alerts.in_alarm} in alarm · ${rule.alerts.pending} pending · ${rule.alerts.ok} ok · ${rule.alerts.evaluating} evaluating · ${rule.alerts.flapping} flapping`),
    session.can('rules', 'update', rule.created_by) ? h('p', {}, h('a', { class: 'button', id: 'edit-rule', href: `#/rules/${encodeURIComponent(id)}/edit` }, 'Edit')) : null,
    h('h2', {}, 'Alerts in alarm over time'),
    rangePicker('day', (key) => drawAlarms(id, alarms, key)),
    alarms,
    h('h2', {}, 'Alert states'),
    table(['Scope key', 'State', 'Since', 'Value', 'Threshold'], states.items.map((s) => [
      s.scope_key, h('span', { class: `state-${s.state}` }, s.state, s.flapping ? ' (flapping)' : ''), when(s.since),
      s.value ?? '', s.threshold ?? '',
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

/** The rule's alerts in alarm over the range `range` of `RANGES`, drawn in `where`. */
async function drawAlarms(id, where, range) {
  const [, last, step] = RANGES[range];
  const stats = await api('GET', `/v1/rules/${encodeURIComponent(id)}/stats?last=${last}&step=${step}`);
  where.replaceChildren(chart({ id: 'chart-rule-alarms', label: 'Alerts in alarm', points: stats.points,
    lines: [{ key: 'in_alarm', label: 'in alarm', value: (p) => p.in_alarm }] }));
}

/** The number typed into the field `path`, or an error shown at that field. */
function number(path, text) {
  const value = Number(String(text).trim());
  if (String(text).trim() === '' || Number.isNaN(value)) throw { field: path, message: 'must be a number' };
  return value;
}
