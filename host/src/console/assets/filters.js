// An editor for a list of filters (`{field, op, value}`), as rule scopes, event matches, metrics
// and silences take them. Each row's controls carry the field path the API names in its errors
// (`scope.filters[1].value`).

import { h, select, splitList } from './dom.js';

const OPS = [['=', '='], ['!=', '≠'], ['>', '>'], ['>=', '≥'], ['<', '<'], ['<=', '≤'], ['in', 'one of'], ['exists', 'exists']];

/**
 * The editor's element and `read()`, which gives the filters typed so far. `path` is the list's
 * field path; `initial` the filters to start from.
 */
export function filtersEditor(path, placeholder, initial = []) {
  const rows = h('div', { class: 'filter-rows' });
  const add = (filter = { field: '', op: OPS[0][0] }) => {
    const fieldInput = h('input', { value: filter.field, placeholder, 'aria-label': 'Field' });
    const op = select(OPS, filter.op);
    op.setAttribute('aria-label', 'Operator');
    const value = h('input', { value: shown(filter.value), 'aria-label': 'Value', placeholder: 'value; one of: a, b' });
    const sync = () => { value.hidden = op.value === 'exists'; };
    op.addEventListener('change', sync);
    sync();
    const row = h('div', { class: 'filter-row' }, fieldInput, op, value,
      h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this filter', onclick: () => { row.remove(); number(); } }, '×'),
      h('span', { class: 'error', role: 'alert' }));
    rows.append(row);
    number();
  };
  // Each row's controls name their place in the list, so the API's errors land beside them.
  const number = () => [...rows.children].forEach((row, i) => {
    const [f, o, v, , error] = row.children;
    f.dataset.field = `${path}[${i}].field`;
    o.dataset.field = `${path}[${i}].op`;
    v.dataset.field = `${path}[${i}].value`;
    error.dataset.errorFor = `${path}[${i}]`;
    for (const control of [f, o, v]) control.dataset.errorSlot = `${path}[${i}]`;
  });
  for (const filter of initial) add(filter);
  const element = h('div', { class: 'filters-editor', 'data-field': path },
    rows, h('button', { type: 'button', class: 'secondary add-filter', onclick: () => add() }, 'Add a filter'),
    h('span', { class: 'error', 'data-error-for': path, role: 'alert' }));
  const read = () => [...rows.children].map((row) => {
    const [f, o, v] = row.children;
    const filter = { field: f.value.trim(), op: o.value };
    if (o.value === 'in') filter.value = splitList(v.value).map(typed);
    else if (o.value !== 'exists') filter.value = typed(v.value.trim());
    return filter;
  });
  return { element, read };
}

/** What a typed value means: a number or a boolean when it reads as one, otherwise text. */
function typed(text) {
  if (text === 'true' || text === 'false') return text === 'true';
  if (text !== '' && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

function shown(value) {
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}
