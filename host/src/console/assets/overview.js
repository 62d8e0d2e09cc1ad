// The tenant's first page: what came in and what went out over the last hour, day or week
// (GET /v1/stats), drawn as charts, with the channels failing most.

import { api } from './api.js';
import { h, show, table } from './dom.js';
import { RANGES, chart, rangePicker, stepMinutes } from './charts.js';

export async function page() {
  const charts = h('div', { id: 'overview' });
  show(h('h1', {}, 'Overview'), rangePicker('hour', (key) => draw(charts, key)), charts);
  await draw(charts, 'hour');
}

async function draw(where, range) {
  const [, last, step] = RANGES[range];
  const stats = await api('GET', `/v1/stats?last=${last}&step=${step}`);
  const minutes = stepMinutes(stats.step);
  const perMinute = (field) => (p) => p[field] / minutes;
  const { points, totals } = stats;
  const latency = (ms) => (ms === null ? '–' : `${ms} ms`);
  where.replaceChildren(
    h('p', { id: 'overview-totals' },
      `${totals.events} events · ${totals.notifications} notifications · ${totals.delivered} delivered · ` +
      `${totals.failed} failed · latency p50 ${latency(totals.latency_p50_ms)}, p99 ${latency(totals.latency_p99_ms)} · ` +
      `${totals.in_alarm} in alarm`),
    h('h2', {}, 'Events per minute'),
    chart({ id: 'chart-events', label: 'Events per minute', points,
      lines: [{ key: 'events', label: 'events', value: perMinute('events') }] }),
    h('h2', {}, 'Notifications and deliveries per minute'),
    chart({ id: 'chart-deliveries', label: 'Notifications and delivery attempts per minute', points,
      bars: [
        { key: 'delivered', label: 'delivered', value: perMinute('delivered') },
        { key: 'failed', label: 'failed', value: perMinute('failed') },
      ],
      lines: [{ key: 'notifications', label: 'notifications', value: perMinute('notifications') }] }),
    h('h2', {}, 'Delivery latency'),
    chart({ id: 'chart-latency', label: 'Delivery latency, p50 and p99', points, unit: ' ms',
      lines: [
        { key: 'p50', label: 'p50', value: (p) => p.latency_p50_ms },
        { key: 'p99', label: 'p99', value: (p) => p.latency_p99_ms },
      ] }),
    h('h2', {}, 'Alerts in alarm'),
    chart({ id: 'chart-alarms', label: 'Alerts in alarm', points,
      lines: [{ key: 'in_alarm', label: 'in alarm', value: (p) => p.in_alarm }] }),
    h('h2', {}, 'Channels failing most'),
    table(['Channel', 'Failed attempts'], stats.failing_channels.map((c) => [
      h('a', { href: `#/channels/${encodeURIComponent(c.channel_id)}` }, c.name || c.channel_id), String(c.failed),
    ]), 'No delivery failed in this range.'),
  );
}
