"""The IVR menu tree, read from ``config/ivr.toml`` and checked as a whole at start.

A menu that points at a node that does not exist, or at a prompt with no text, would
strand a resident mid-call; so every reference is resolved here, before the first call.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from telephony.exceptions import ConfigError

DTMF_KEYS = frozenset("0123456789*#ABCD")


class ActionKind(StrEnum):
    SUBMENU = "submenu"
    QUEUE = "queue"
    OPERATOR = "operator"
    EMERGENCY = "emergency"
    MESSAGE = "message"
    REPEAT = "repeat"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: str = ""  # node for submenu, queue name for queue
    tag: str = ""  # e.g. repair class "urgent" / "general"

    def __str__(self) -> str:
        if self.kind is ActionKind.SUBMENU:
            return f"submenu:{self.target}"
        if self.kind is ActionKind.QUEUE:
            return f"queue:{self.target}" + (f"/{self.tag}" if self.tag else "")
        return self.kind.value

    @property
    def queue(self) -> str | None:
        """The queue a routing action sends the caller to; None for navigation."""
        match self.kind:
            case ActionKind.QUEUE:
                return self.target
            case ActionKind.OPERATOR:
                return "operator"
            case ActionKind.EMERGENCY:
                return "emergency"
            case ActionKind.MESSAGE:
                return "message"
        return None

    @classmethod
    def parse(cls, text: str) -> Action:
        head, _, rest = text.partition(":")
        try:
            kind = ActionKind(head)
        except ValueError as err:
            raise ValueError(f"unknown action {head!r}") from err
        if kind in (ActionKind.SUBMENU, ActionKind.QUEUE):
            target, _, tag = rest.partition("/")
            if not target:
                raise ValueError(f"{kind.value} needs a name, e.g. {kind.value}:repair")
            return cls(kind, target, tag)
        if rest:
            raise ValueError(f"{kind.value} takes no argument")
        return cls(kind)


@dataclass(frozen=True)
class MenuNode:
    id: str
    prompt: str
    options: dict[str, Action]
    timeout_s: float
    max_retries: int

    @property
    def stands_for(self) -> str | None:
        """The one queue this node's queue options all lead to, if there is one.

        A caller who pressed 2 (报修) and hung up in the repair menu has chosen repair
        without a class yet; the operator and other kinds of option are ways out, not a
        different subject, so they do not count.
        """
        queues = {a.target for a in self.options.values() if a.kind is ActionKind.QUEUE}
        return queues.pop() if len(queues) == 1 else None


@dataclass(frozen=True)
class Menu:
    root: str
    nodes: dict[str, MenuNode]
    prompts: dict[str, str]
    inter_digit_s: float

    def node(self, node_id: str) -> MenuNode:
        return self.nodes[node_id]

    @property
    def queues(self) -> set[str]:
        return {a.queue for n in self.nodes.values() for a in n.options.values() if a.queue} | {
            "operator"
        }


REQUIRED_PROMPTS = (
    "greeting",
    "invalid",
    "no_input",
    "hold_timeout",
    "route_operator",
    "message_asked",
    "message_no_agents",
    "message_out_of_hours",
    "message_thanks",
    "callback_offer",
    "callback_number_is",
    "callback_confirm",
    "callback_enter",
    "callback_invalid",
    "callback_booked",
    "callback_not_booked",
)


def load_menu(path: Path) -> Menu:
    """Read and validate the menu file; errors name the file, the key and the reason."""
    src = str(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as err:
        raise ConfigError(src, "-", "IVR menu file not found") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(src, "-", f"not valid TOML: {err}") from err

    prompts = _table(data, "prompts", src)
    for key, text in prompts.items():
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(src, f"prompts.{key}", "must be a non-empty string")
    for key in REQUIRED_PROMPTS:
        if key not in prompts:
            raise ConfigError(src, f"prompts.{key}", "missing (the service speaks it)")

    menu = _table(data, "menu", src)
    default_timeout = _number(menu, "timeout_s", 6.0, src, "menu")
    default_retries = int(_number(menu, "max_retries", 2, src, "menu"))
    inter_digit = _number(menu, "inter_digit_s", 3.0, src, "menu")
    raw_nodes = _table(menu, "nodes", src, "menu.")
    nodes: dict[str, MenuNode] = {}
    for node_id, raw in raw_nodes.items():
        where = f"menu.nodes.{node_id}"
        if not isinstance(raw, dict):
            raise ConfigError(src, where, "must be a table")
        prompt = raw.get("prompt")
        if not isinstance(prompt, str) or prompt not in prompts:
            raise ConfigError(src, f"{where}.prompt", f"no prompt text named {prompt!r}")
        options: dict[str, Action] = {}
        for key, text in _table(raw, "options", src, f"{where}.").items():
            if key not in DTMF_KEYS:
                raise ConfigError(src, f"{where}.options.{key}", "not a DTMF key (0-9 * # A-D)")
            try:
                options[key] = Action.parse(str(text))
            except ValueError as err:
                raise ConfigError(src, f"{where}.options.{key}", str(err)) from err
        unknown = set(raw) - {"prompt", "options", "timeout_s", "max_retries"}
        if unknown:
            raise ConfigError(src, f"{where}.{sorted(unknown)[0]}", "unknown key")
        nodes[node_id] = MenuNode(
            id=node_id,
            prompt=prompt,
            options=options,
            timeout_s=_number(raw, "timeout_s", default_timeout, src, where),
            max_retries=int(_number(raw, "max_retries", default_retries, src, where)),
        )
    root = menu.get("root")
    if root not in nodes:
        raise ConfigError(src, "menu.root", f"no node named {root!r}")
    for node in nodes.values():
        for key, action in node.options.items():
            where = f"menu.nodes.{node.id}.options.{key}"
            if action.kind is ActionKind.SUBMENU and action.target not in nodes:
                raise ConfigError(src, where, f"no node named {action.target!r}")
            queue = action.queue
            if queue and f"route_{queue}" not in prompts:
                raise ConfigError(src, where, f"queue {queue!r} needs a prompts.route_{queue}")
    return Menu(root=str(root), nodes=nodes, prompts=dict(prompts), inter_digit_s=inter_digit)


def _table(data: dict[str, Any], key: str, src: str, prefix: str = "") -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConfigError(src, f"{prefix}{key}", "missing or not a table")
    return value


def _number(data: dict[str, Any], key: str, default: float, src: str, where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(src, f"{where}.{key}", f"expected a non-negative number, got {value!r}")
    return float(value)
