// A template plugin in JavaScript: a compact JSON message for a chat or incident tool.
//
// Build (in this folder, after `npm install`): npm run build:template

export function render(context) {
  const state = context.state.current.replace('-', '_');
  const who = context.customer ? (context.customer.name ?? context.customer.id) : 'all customers';
  const headline = `${context.rule.name}: ${state === 'ok' ? 'resolved' : 'alarm'} for ${who}`;
  const body = {
    headline,
    state,
    value: context.value ?? null,
    threshold: context.threshold ?? null,
    link: context.notification.url,
  };
  return {
    body: JSON.stringify(body),
    contentType: 'application/json',
    headers: [['X-Klaxon-Rule', context.rule.id]],
  };
}
