"""A condition plugin in Python: usage over a limit that depends on the customer's plan.

Config: {"limit": 1000, "plans": {"enterprise": 5000}}. The customer's `plan` field picks a
limit from `plans`; customers without one get `limit`.

Build (from the repository's root):
    componentize-py -d wit/0.1.0 -w condition componentize -p examples/python/condition app -o usage_limit.wasm
"""

import json

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import host, types


def limits(config: str) -> dict:
    parsed = json.loads(config)
    if not isinstance(parsed.get("limit"), (int, float)):
        raise Err("limit: must be a number")
    plans = parsed.get("plans", {})
    if not isinstance(plans, dict) or not all(isinstance(v, (int, float)) for v in plans.values()):
        raise Err("plans: must map plan names to numbers")
    return parsed


class WitWorld(World):
    def validate(self, config: str) -> None:
        limits(config)

    def evaluate(self, input: types.Evaluation) -> types.Verdict:
        config = limits(input.config)
        if input.value is None:
            raise Err("this condition needs a metric: give the rule one")
        fields = json.loads(input.customer.fields) if input.customer else {}
        plan = fields.get("plan")
        limit = config.get("plans", {}).get(plan, config["limit"])
        used = input.value.current
        host.log(host.Level.DEBUG, f"{input.scope_key}: {used} of {limit} ({plan or 'no plan'})")
        over = used > limit
        return types.Verdict(
            fire=over,
            value=used,
            severity=types.Severity.CRITICAL if used > 2 * limit else None,
            message=f"{used:g} used, over the {plan or 'default'} limit of {limit:g}" if over else None,
            labels=[("limit", f"{limit:g}"), ("plan", plan or "none")],
        )
