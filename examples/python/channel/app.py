"""A channel plugin in Python: a Telegram chat, through the Bot API's sendMessage.

Config: {"bot_token": "123456:ABC...", "chat_id": "-1001234567890"}, with optional
"message_thread_id" (a forum topic) and "url" (the Bot API's address, when not Telegram's own).
Give `bot_token` as the channel's `secret_config`, and `allow_hosts: ["api.telegram.org"]`.
An info-severity notice arrives without a sound.

Build (from the repository's root):
    componentize-py -d wit -w channel componentize -p examples/python/channel app -o telegram.wasm
"""

import html
import json
import math

from componentize_py_types import Err
from wit_world import WitWorld as World
from wit_world.imports import types

BOT_API = "https://api.telegram.org"
TEXT_LIMIT = 4096
SCHEMA = {
    "type": "object",
    "required": ["bot_token", "chat_id"],
    "additionalProperties": False,
    "properties": {
        "bot_token": {"type": "string", "writeOnly": True, "description": "The bot's token"},
        "chat_id": {"type": ["string", "integer"], "description": "The chat's id or @channelname"},
        "message_thread_id": {"type": "integer", "description": "A forum topic to post in"},
        "url": {"type": "string", "description": "The Bot API's address, when not Telegram's own"},
    },
}
MARKS = {types.Severity.CRITICAL: "🔴", types.Severity.WARNING: "🟠", types.Severity.INFO: "🔵"}


def parse(config: str) -> dict:
    parsed = json.loads(config)
    if not isinstance(parsed, dict):
        raise Err("the config must be an object")
    unknown = sorted(set(parsed) - set(SCHEMA["properties"]))
    if unknown:
        raise Err(f"{unknown[0]}: unknown field")
    token = parsed.get("bot_token")
    if not isinstance(token, str) or ":" not in token or not token.split(":", 1)[0].isdigit():
        raise Err("bot_token: must be a bot's token (digits, a colon, then the secret)")
    chat = parsed.get("chat_id")
    if isinstance(chat, bool) or not isinstance(chat, (str, int)) or chat == "":
        raise Err("chat_id: must be a chat's id or @channelname")
    thread = parsed.get("message_thread_id")
    if thread is not None and (isinstance(thread, bool) or not isinstance(thread, int)):
        raise Err("message_thread_id: must be an integer")
    return parsed


def text(context: types.Context) -> str:
    resolved = context.state.current == types.AlertState.OK
    who = (context.customer.name or context.customer.id) if context.customer else None
    title = ("Resolved: " if resolved else "") + context.rule.name + (f" for {who}" if who else "")
    lines = [f"{'✅' if resolved else MARKS[context.rule.severity]} <b>{html.escape(title, quote=False)}</b>"]
    numbers = (("Value", context.value), ("Threshold", context.threshold))
    facts = [f"{name} {number:g}" for name, number in numbers if number is not None]
    if facts:
        lines.append(" · ".join(facts))
    lines.append(f'<a href="{html.escape(context.notification.url)}">Open in Klaxon</a>')
    return "\n".join(lines)[:TEXT_LIMIT]


class WitWorld(World):
    def config_schema(self) -> str:
        return json.dumps(SCHEMA)

    def validate(self, config: str) -> None:
        parse(config)

    def requests(self, context: types.Context, config: str) -> list[types.HttpRequest]:
        parsed = parse(config)
        message = {
            "chat_id": parsed["chat_id"],
            "text": text(context),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
            "disable_notification": context.rule.severity == types.Severity.INFO,
        }
        if "message_thread_id" in parsed:
            message["message_thread_id"] = parsed["message_thread_id"]
        url = f"{parsed.get('url', BOT_API).rstrip('/')}/bot{parsed['bot_token']}/sendMessage"
        headers = [("content-type", "application/json")]
        return [types.HttpRequest(method="POST", url=url, headers=headers, body=json.dumps(message).encode())]

    def classify(self, index: int, response: types.HttpResponse, config: str) -> types.DeliveryOutcome:
        """Telegram answers {"ok": true, ...}, or {"ok": false, "description": ...} with
        `parameters.retry_after` when flooded and `parameters.migrate_to_chat_id` when a group
        became a supergroup (the channel's chat_id must change: retrying cannot help)."""
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if 200 <= response.status < 300 and answer.get("ok", True):
            return types.DeliveryOutcome_Delivered()
        parameters = answer.get("parameters") or {}
        description = answer.get("description") or response.body[:200].decode(errors="replace")
        if response.status == 429 or response.status >= 500:
            after = parameters.get("retry_after")
            return types.DeliveryOutcome_Retry(math.ceil(after) if isinstance(after, (int, float)) else None)
        if "migrate_to_chat_id" in parameters:
            description += f" (set chat_id to {parameters['migrate_to_chat_id']})"
        return types.DeliveryOutcome_Failed(f"Telegram refused the message ({response.status}): {description}")
