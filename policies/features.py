"""Render contexts and actions as Vowpal Wabbit text examples.

VW's text format gives meaning to whitespace, ``|`` and ``:``, so every name and
string value is escaped by one function. Strings become indicator features
``name=value``, numbers become ``name:value``, ``True`` becomes ``name`` (False is
left out), and lists of strings become one indicator per element.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import orjson

from policies.base import Action, Features, FeatureValue

__all__ = [
    "action_line",
    "action_namespaces",
    "cb_label",
    "context_namespaces",
    "escape",
    "multiline_example",
    "regression_features",
    "shared_line",
]

_UNSAFE = re.compile(r"[\s|:]+")
# Action ids are given their own namespace so a model can learn per-offer effects
# even when the storefront sends no action features.
ACTION_ID_NAMESPACE = "_action"


def escape(token: str) -> str:
    """Return `token` with the characters VW's text format reserves replaced by '_'."""
    cleaned = _UNSAFE.sub("_", token)
    return cleaned or "_"


def _feature_tokens(name: str, value: FeatureValue) -> list[str]:
    key = escape(name)
    if isinstance(value, bool):
        return [key] if value else []
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"feature {name!r} is not a finite number")
        return [f"{key}:{number:.9g}"]
    if isinstance(value, str):
        return [f"{key}={escape(value)}"]
    return [f"{key}={escape(item)}" for item in value]


def _namespaces(features: Features) -> str:
    parts = []
    for namespace, values in features.items():
        tokens = [t for name, value in values.items() for t in _feature_tokens(name, value)]
        parts.append(f"|{escape(namespace)} {' '.join(tokens)}")
    return " ".join(parts)


def shared_line(context: Features) -> str:
    """Return the `shared` line for a context.

    A bare ``shared`` with nothing after it would be read by VW as an action, so an
    empty context is written as ``shared |`` (an empty default namespace).
    """
    return f"shared {_namespaces(context) or '|'}"


def action_line(action: Action, label: str = "") -> str:
    """Return the line for one action, with an optional CB label in front."""
    body = action_namespaces(action)
    return f"{label} {body}" if label else body


def cb_label(reward: float, probability: float) -> str:
    """Return VW's `0:cost:probability` label; cost is the negated reward."""
    return f"0:{-reward:.9g}:{probability:.9g}"


def multiline_example(
    context: Features,
    actions: Sequence[Action],
    labels: Mapping[int, str] | None = None,
) -> list[str]:
    """Return the shared line followed by one line per action, labelled where given."""
    labels = labels or {}
    return [shared_line(context)] + [
        action_line(action, labels.get(index, "")) for index, action in enumerate(actions)
    ]


def context_namespaces(context: Features) -> str:
    """Return a context's namespaces as VW text (no ``shared`` prefix)."""
    return _namespaces(context)


def action_namespaces(action: Action) -> str:
    """Return an action's namespaces as VW text, its id included.

    A storefront sends the same offers with the same features over and over, and a
    replay renders the same actions thousands of times, so texts are cached by
    content (the id and the features serialised with sorted keys): rendering was
    the largest part of a rank before.
    """
    key = (action.id, orjson.dumps(action.features, option=orjson.OPT_SORT_KEYS))
    text = _ACTION_TEXT.get(key)
    if text is None:
        text = _namespaces({ACTION_ID_NAMESPACE: {"id": action.id}, **action.features})
        if len(_ACTION_TEXT) >= _ACTION_TEXT_LIMIT:
            _ACTION_TEXT.clear()
        _ACTION_TEXT[key] = text
    return text


_ACTION_TEXT: dict[tuple[str, bytes], str] = {}
_ACTION_TEXT_LIMIT = 16_384


def regression_features(context_text: str, action_text: str, slot: int) -> str:
    """Join the parts of one (context, action, slot) example for a reward regression.

    The slot is a feature of its own so a model can learn that lower slots earn less.
    """
    return f"{context_text} {action_text} |_slot k={slot}"
