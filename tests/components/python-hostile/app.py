"""A Python condition that misbehaves on purpose, as its config says."""

import json

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import types


class WitWorld(World):
    def validate(self, config: str) -> None:
        pass

    def evaluate(self, input: types.Evaluation) -> types.Verdict:
        behaviour = json.loads(input.config).get("behaviour")
        if behaviour == "infinite-loop":
            n = 0
            while True:
                n += 1
        if behaviour == "memory-bomb":
            hoard = bytearray(1 << 30)
            return types.Verdict(fire=True, value=len(hoard), severity=None, message=None, labels=[])
        raise Err(f"unknown behaviour {behaviour!r}")
