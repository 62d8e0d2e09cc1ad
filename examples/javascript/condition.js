// A condition plugin in JavaScript: usage over a limit that depends on the customer's plan.
//
// Config: {"limit": 1000, "plans": {"enterprise": 5000}}. The customer's `plan` field picks a
// limit from `plans`; customers without one get `limit`.
//
// Build (in this folder, after `npm install`): npm run build:condition

import { log } from 'klaxon:plugin/host@0.1.0';

function limits(config) {
  const parsed = JSON.parse(config);
  if (typeof parsed.limit !== 'number') throw 'limit: must be a number';
  const plans = parsed.plans ?? {};
  if (typeof plans !== 'object' || !Object.values(plans).every((v) => typeof v === 'number')) {
    throw 'plans: must map plan names to numbers';
  }
  return { limit: parsed.limit, plans };
}

export function validate(config) {
  limits(config);
}

export function evaluate(input) {
  const { limit: fallback, plans } = limits(input.config);
  if (!input.value) throw 'this condition needs a metric: give the rule one';
  const plan = input.customer ? JSON.parse(input.customer.fields).plan : undefined;
  const limit = plans[plan] ?? fallback;
  const used = input.value.current;
  log('debug', `${input.scopeKey}: ${used} of ${limit} (${plan ?? 'no plan'})`);
  const over = used > limit;
  return {
    fire: over,
    value: used,
    severity: used > 2 * limit ? 'critical' : undefined,
    message: over ? `${used} used, over the ${plan ?? 'default'} limit of ${limit}` : undefined,
    labels: [['limit', String(limit)], ['plan', plan ?? 'none']],
  };
}
