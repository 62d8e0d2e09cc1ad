// A plugin's config as a form, drawn from the JSON Schema its version publishes (WIT 0.2.0's
// config-schema): one control for each property that is a number, an integer, a string, a
// boolean or a choice. The controls edit their keys in the config's JSON, which stays the one
// source of the config; properties the form cannot draw are edited there. A property marked
// `writeOnly` (a channel's secret) is a password control writing to a separate object instead,
// when the caller keeps one: a secret is sent, never shown back.

import { h, field, select } from './dom.js';

const SIMPLE = ['number', 'integer', 'string', 'boolean'];

/**
 * The controls for `schema`, editing the JSON object in `textarea`, their fields named under
 * `prefix`; null when none apply. With `secrets`, write-only properties edit that object.
 */
export function configControls(schema, textarea, { prefix = 'condition.config', secrets = null } = {}) {
  if (!schema || schema.type !== 'object' || !schema.properties) return null;
  const drawn = Object.entries(schema.properties).filter(([, p]) => p && (Array.isArray(p.enum) || SIMPLE.includes(p.type)));
  if (drawn.length === 0) return null;
  const required = schema.required || [];
  const current = readConfig(textarea) || {};
  return h('div', { class: 'filters', id: 'config-form' }, drawn.map(([key, property]) => {
    const label = `${property.title || key}${required.includes(key) ? '' : ' (optional)'}`;
    if (property.writeOnly && secrets) {
      const control = h('input', { type: 'password', autocomplete: 'off', placeholder: secrets.kept ? 'kept when left empty' : null });
      control.addEventListener('input', () => {
        if (control.value) secrets.values[key] = control.value; else delete secrets.values[key];
      });
      return field(label, `secret_config.${key}`, control, property.description);
    }
    const control = controlFor(property, current[key]);
    control.addEventListener('input', () => write(textarea, key, property, control.value));
    control.addEventListener('change', () => write(textarea, key, property, control.value));
    return field(label, `${prefix}.${key}`, control, property.description);
  }));
}

/** Whether `schema` marks any property write-only (a secret its form asks for). */
export function hasSecrets(schema) {
  return Object.values(schema?.properties || {}).some((p) => p?.writeOnly);
}

function controlFor(property, value) {
  const text = value === undefined || value === null ? '' : String(value);
  if (Array.isArray(property.enum)) {
    return select([['', defaultLabel(property)], ...property.enum.map((v) => [String(v), String(v)])], text);
  }
  if (property.type === 'boolean') return select([['', defaultLabel(property)], ['true', 'yes'], ['false', 'no']], text);
  const numeric = property.type === 'number' || property.type === 'integer';
  return h('input', { value: text, inputmode: numeric ? 'decimal' : null,
    placeholder: property.default === undefined ? null : String(property.default) });
}

function defaultLabel(property) {
  return property.default === undefined ? '(not set)' : `(default: ${property.default})`;
}

/** The config as JSON, when the text is a JSON object. */
function readConfig(textarea) {
  try {
    const value = JSON.parse(textarea.value || '{}');
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Sets `key` in the config to what the control says (removed when empty), typed by the schema. */
function write(textarea, key, property, text) {
  const config = readConfig(textarea) || {};
  const trimmed = text.trim();
  if (!trimmed) delete config[key];
  else config[key] = typed(property, trimmed);
  textarea.value = JSON.stringify(config, null, 2);
}

function typed(property, text) {
  const kinds = Array.isArray(property.enum) ? property.enum.map((v) => typeof v) : [property.type];
  if ((kinds.includes('number') || kinds.includes('integer')) && text !== '' && !Number.isNaN(Number(text))) return Number(text);
  if (kinds.includes('boolean') && (text === 'true' || text === 'false')) return text === 'true';
  // Anything else as typed: the plugin's validate names what is wrong when the rule is saved.
  return text;
}
