"""A template plugin in Python: a compact JSON message for a chat or incident tool.

Build (from the repository's root):
    componentize-py -d wit/0.1.0 -w template componentize -p examples/python/template app -o compact_json.wasm
"""

import json

from wit_world import WitWorld as World
from wit_world.imports import types

STATES = {
    types.AlertState.EVALUATING: "evaluating",
    types.AlertState.OK: "ok",
    types.AlertState.IN_ALARM: "in_alarm",
}


class WitWorld(World):
    def render(self, context: types.Context) -> types.Payload:
        state = STATES[context.state.current]
        who = context.customer.name or context.customer.id if context.customer else "all customers"
        headline = f"{context.rule.name}: {'resolved' if state == 'ok' else 'alarm'} for {who}"
        body = {
            "headline": headline,
            "state": state,
            "value": context.value,
            "threshold": context.threshold,
            "link": context.notification.url,
        }
        return types.Payload(
            body=json.dumps(body),
            content_type="application/json",
            headers=[("X-Klaxon-Rule", context.rule.id)],
        )
