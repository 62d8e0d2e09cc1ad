// Charts drawn as inline SVG by the console itself (no third-party script): values over time,
// as stacked bars and lines, with the range a reader picks (the last hour, day or week).

import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 150;
/** Room for the value labels on the left and the time labels below. */
const LEFT = 40;
const BOTTOM = 16;
const TOP = 6;

/** The ranges offered: the span asked for and its step (about 60 to 90 points each). */
export const RANGES = {
  hour: ['Last hour', '1h', '1m'],
  day: ['Last day', '1d', '20m'],
  week: ['Last week', '7d', '2h'],
};

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

/** Buttons choosing a range of `RANGES`; `pick(key)` is called on a choice (and marks it). */
export function rangePicker(chosen, pick) {
  const buttons = Object.entries(RANGES).map(([key, [label]]) => h('button', {
    type: 'button', class: key === chosen ? '' : 'secondary', 'data-range': key, 'aria-pressed': String(key === chosen),
    onclick: () => {
      for (const b of buttons) {
        const on = b.dataset.range === key;
        b.className = on ? '' : 'secondary';
        b.setAttribute('aria-pressed', String(on));
      }
      pick(key);
    },
  }, label));
  return h('div', { class: 'row', role: 'group', 'aria-label': 'Range' }, buttons);
}

/** A step as the API writes it (`1m`, `20m`, `2h`, `1d`), in minutes. */
export function stepMinutes(step) {
  const n = parseInt(step, 10);
  return n * ({ m: 1, h: 60, d: 1440 }[step.slice(-1)] || 1);
}

/** A number short enough for an axis: 1200 as 1.2k. */
function short(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(n < 10 ? 2 : 0)}`;
}

function time(at, long) {
  const d = new Date(at);
  return long ? d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' +
    d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * A chart of `points` (each with its `at`): `bars` stacked from the bottom, then `lines` over
 * them. Each series is `{ key, label, value(point) }`; a null value leaves a gap in a line.
 * Each bar and each line's vertices carry `data-series`, and hovering tells the value.
 */
export function chart({ id, label, points, bars = [], lines = [], unit = '' }) {
  const values = (series) => points.map((p) => series.value(p));
  const barValues = bars.map(values);
  const lineValues = lines.map(values);
  const stacked = points.map((_, i) => barValues.reduce((sum, v) => sum + (v[i] || 0), 0));
  const most = Math.max(1e-9, ...stacked, ...lineValues.flat().filter((v) => v !== null));
  const plot = { w: WIDTH - LEFT, h: HEIGHT - BOTTOM - TOP };
  const slot = plot.w / Math.max(1, points.length);
  const y = (v) => TOP + plot.h - (v / most) * plot.h;
  const x = (i) => LEFT + i * slot + slot / 2;
  const long = points.length > 1 && new Date(points.at(-1).at) - new Date(points[0].at) > 86_400_000;
  const parts = [
    svg('line', { class: 'axis', x1: LEFT, y1: TOP + plot.h, x2: WIDTH, y2: TOP + plot.h }),
    svg('text', { x: LEFT - 4, y: TOP + 8, 'text-anchor': 'end' }, short(most) + unit),
    svg('text', { x: LEFT - 4, y: TOP + plot.h, 'text-anchor': 'end' }, `0${unit}`),
  ];
  const base = points.map(() => 0);
  bars.forEach((series, s) => {
    points.forEach((p, i) => {
      const v = barValues[s][i] || 0;
      const top = y(base[i] + v);
      parts.push(svg('rect', {
        class: `bar s-${series.key}`, 'data-series': series.key, x: (LEFT + i * slot + 0.5).toFixed(1),
        y: top.toFixed(1), width: Math.max(0.5, slot - 1).toFixed(1), height: (y(base[i]) - top).toFixed(1),
      }, svg('title', {}, `${time(p.at, long)}: ${short(v)}${unit} ${series.label}`)));
      base[i] += v;
    });
  });
  lines.forEach((series, s) => {
    // A run of values without a gap is one polyline; a lone value is a dot.
    let run = [];
    const end = () => {
      if (run.length === 1) {
        const [[cx, cy, title]] = run;
        parts.push(svg('circle', { class: `dot s-${series.key}`, 'data-series': series.key, cx, cy, r: 2 }, svg('title', {}, title)));
      } else if (run.length > 1) {
        parts.push(svg('polyline', { class: `line s-${series.key}`, 'data-series': series.key,
          points: run.map(([px, py]) => `${px},${py}`).join(' ') }));
      }
      run = [];
    };
    points.forEach((p, i) => {
      const v = lineValues[s][i];
      if (v === null || v === undefined) { end(); return; }
      run.push([x(i).toFixed(1), y(v).toFixed(1), `${time(p.at, long)}: ${short(v)}${unit} ${series.label}`]);
    });
    end();
  });
  if (points.length) {
    parts.push(svg('text', { x: LEFT, y: HEIGHT - 2 }, time(points[0].at, long)));
    parts.push(svg('text', { x: WIDTH, y: HEIGHT - 2, 'text-anchor': 'end' }, time(points.at(-1).at, long)));
  }
  const legend = h('p', { class: 'legend' }, [...bars, ...lines].map((series) =>
    h('span', {}, h('span', { class: `swatch s-${series.key}` }), series.label)));
  return h('figure', { class: 'chart' },
    svg('svg', { id, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label, 'data-points': points.length }, ...parts),
    legend);
}
