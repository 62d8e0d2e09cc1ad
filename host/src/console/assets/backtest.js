// "Try against the last N days": a rule from the form replayed against the stored events
// (POST /v1/rules/backtest), drawn as a timeline of what it would have sent per day.

import { api } from './api.js';
import { h, when } from './dom.js';
import { svg } from './charts.js';

const WIDTH = 640;
const HEIGHT = 120;
const LISTED = 20;

/** Backtests `rule` over the last `days` days; shows progress, then the report, in `where`. */
export async function tryRule(rule, days, where) {
  where.replaceChildren(h('p', { class: 'muted' }, 'Replaying the stored events…'));
  let answer = await api('POST', '/v1/rules/backtest', { rule, last: `${days}d` });
  // A long range runs as a job: follow it until it ends.
  while (answer.state === 'running') {
    where.replaceChildren(h('p', { class: 'muted' }, `Replaying: ${answer.events_replayed} of ${answer.events_total} events…`));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    answer = await api('GET', `/v1/backtests/${encodeURIComponent(answer.id)}`);
  }
  if (answer.state === 'failed') throw new Error(answer.error);
  const report = answer.report || answer;
  where.replaceChildren(...summary(report));
}

function summary(report) {
  const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
  const kinds = Object.entries(report.counts).map(([kind, n]) => `${n} ${kind}`).join(', ');
  return [
    h('p', { id: 'backtest-summary' },
      `Would have sent ${total} notification${total === 1 ? '' : 's'}${total ? ` (${kinds})` : ''} over ${report.events} events.`),
    timeline(report.per_day),
    report.notifications.length === 0 ? null : h('table', {},
      h('thead', {}, h('tr', {}, ['When', 'Customer', 'Kind', 'Value'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, report.notifications.slice(0, LISTED).map((n) => h('tr', {},
        h('td', {}, when(n.at)), h('td', {}, n.customer_id || n.scope_key), h('td', {}, n.kind),
        h('td', {}, n.value ?? ''))))),
    report.notifications.length > LISTED ? h('p', { class: 'muted' }, `The first ${LISTED} are listed.`) : null,
  ];
}

/** A bar per day, as tall as its count; each names its day and count on hover. */
function timeline(days) {
  const most = Math.max(1, ...days.map((d) => d.count));
  const step = WIDTH / Math.max(1, days.length);
  const bars = days.map((d, i) => {
    const height = Math.round((d.count / most) * (HEIGHT - 20));
    return svg('rect', { class: 'bar', x: (i * step + 1).toFixed(1), y: HEIGHT - 16 - height,
      width: Math.max(1, step - 2).toFixed(1), height, 'data-count': d.count },
    svg('title', {}, `${d.day}: ${d.count}`));
  });
  const labels = [0, days.length - 1].filter((i, k, all) => days[i] && all.indexOf(i) === k).map((i) =>
    svg('text', { x: i === 0 ? 0 : WIDTH, y: HEIGHT - 2, 'text-anchor': i === 0 ? 'start' : 'end' }, days[i].day));
  return svg('svg', { id: 'backtest-timeline', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img',
    'aria-label': 'Notifications per day' }, ...bars, ...labels);
}
