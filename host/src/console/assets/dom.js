// Building the page from data. Every value goes in as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'value') el.value = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces the page's content and moves focus to it, for keyboard and screen-reader users. */
export function show(...nodes) {
  const main = document.getElementById('main');
  main.replaceChildren(...nodes.flat(Infinity).filter((node) => node !== null && node !== undefined && node !== false));
  main.focus();
}

let ids = 0;

/** A labelled control whose errors the API reports under the field path `path`. */
export function field(label, path, control, hint) {
  const id = `f${++ids}`;
  control.id = id;
  control.dataset.field = path;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('span', { class: 'hint' }, hint) : null,
    h('span', { class: 'error', 'data-error-for': path, role: 'alert' }));
}

/**
 * Shows an API error next to the control it names: the control whose field path is the longest
 * prefix of the error's `field` (`condition.value` for `condition.value`, `headers` for
 * `headers.X-Who`), in that control's error slot (its `data-error-slot`, or its own path), among
 * the controls shown (kinds share paths); errors naming no control go at the top of the form.
 */
export function showError(form, failure) {
  clearErrors(form);
  const path = failure.field || '';
  let best = null;
  for (const control of form.querySelectorAll('[data-field]')) {
    if (control.closest('[hidden]')) continue;
    const own = control.dataset.field;
    if ((path === own || path.startsWith(own + '.') || path.startsWith(own + '[')) &&
        (!best || own.length > best.dataset.field.length)) best = control;
  }
  const own = best && (best.dataset.errorSlot || best.dataset.field);
  const slot = best
    ? [...form.querySelectorAll(`[data-error-for="${CSS.escape(own)}"]`)].find((el) => !el.closest('[hidden]'))
    : form.querySelector('.form-error');
  slot.textContent = failure.message;
  if (best) { best.setAttribute('aria-invalid', 'true'); best.focus(); }
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll('.error')) slot.textContent = '';
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
}

/** A form with a slot for errors that name no field, submitted by `onsubmit(form)`. */
export function form(onsubmit, ...children) {
  const el = h('form', { novalidate: true }, h('p', { class: 'error form-error', role: 'alert' }), ...children);
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = el.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    clearErrors(el);
    try { await onsubmit(el); } catch (failure) { showError(el, failure); } finally { if (button) button.disabled = false; }
  });
  return el;
}

/**
 * Runs an API call whose failure is shown in `where` instead of the page's error: its answer
 * (`true` for an empty one), or null when it failed.
 */
export async function attempt(where, call) {
  try {
    return (await call()) ?? true;
  } catch (failure) {
    where.replaceChildren(h('p', { class: 'error', role: 'alert' }, failure.message));
    return null;
  }
}

export function table(headings, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

export function select(options, value) {
  return h('select', {}, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

export function when(timestamp) {
  return timestamp ? new Date(timestamp).toLocaleString() : '';
}

/** The items of a comma-separated list, trimmed, without empty ones. */
export function splitList(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

export function json(value) {
  return h('pre', {}, JSON.stringify(value, null, 2));
}

/** A local date and time from a datetime-local control, as an RFC 3339 instant. */
export function instant(path, value) {
  const at = new Date(value);
  if (!value || Number.isNaN(at.getTime())) throw { field: path, message: 'choose a date and time' };
  return at.toISOString();
}

/** An RFC 3339 instant as a datetime-local control's value, in the browser's time zone. */
export function local(timestamp) {
  if (!timestamp) return '';
  const at = new Date(timestamp);
  return new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}
