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
from dataclasses import dataclass
from functools import lru_cache

import orjson

from policies.base import Action, Features, FeatureValue
from policies.deciding.vw_args import parse_vw_args

__all__ = [
    "ExampleCost",
    "FeatureLimits",
    "TooCostly",
    "action_line",
    "action_namespaces",
    "cb_label",
    "context_namespaces",
    "escape",
    "example_cost",
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


# -- cost ------------------------------------------------------------------------------
#
# VW's work on a multi-line example grows with the features of every action line (the
# shared features are copied into each) and, under -q/--cubic/--interactions, with the
# product of the namespaces each interaction names: `-q ::` squares the line's feature
# count. A 220 KB request with 44,000 context features hung a worker for 30 s, so the
# cost is computed from the features alone, before VW sees them.


@dataclass(frozen=True, slots=True)
class ExampleCost:
    """The work one decision asks of VW, counted before VW sees it.

    ``context_features`` and ``action_features`` count features after flattening
    (a list counts each element, a False flag nothing); ``features_x_actions`` sums
    every action line's features (context, action and id); ``interaction_pairs``
    bounds the interaction features the VW arguments generate over all lines, times
    the number of learners (``--bag``, ``--cover``) that see each.
    """

    context_features: int
    action_features: tuple[int, ...]
    features_x_actions: int
    interaction_pairs: int


class TooCostly(ValueError):
    """A decision would cost more than a limit allows; `limit` names it, `field` says where."""

    def __init__(self, limit: str, field: str, value: int, maximum: int):
        super().__init__(f"{field}: {value:,} exceeds {limit} = {maximum:,}")
        self.limit = limit
        self.field = field
        self.value = value
        self.maximum = maximum


@dataclass(frozen=True, slots=True)
class FeatureLimits:
    """The most work one decision may cause (docs/security.md, "Limits").

    The defaults are far above a real storefront's (a few hundred context features,
    ~50 actions with tens of features each) and keep the worst accepted rank near
    50 ms of CPU with ``-q ::``.
    """

    max_context_features: int = 1024
    max_action_features: int = 256
    max_features_x_actions: int = 32_768
    max_interaction_pairs: int = 25_000_000

    def check(
        self, cost: ExampleCost, *, context_field: str = "context", actions_field: str = "actions"
    ) -> None:
        """Raise TooCostly naming the first limit `cost` exceeds (and the field to blame)."""
        if cost.context_features > self.max_context_features:
            raise TooCostly(
                "max_context_features", context_field, cost.context_features, self.max_context_features
            )
        for k, count in enumerate(cost.action_features):
            if count > self.max_action_features:
                raise TooCostly(
                    "max_action_features", f"{actions_field}[{k}].features", count, self.max_action_features
                )
        if cost.features_x_actions > self.max_features_x_actions:
            raise TooCostly(
                "max_features_x_actions", actions_field, cost.features_x_actions, self.max_features_x_actions
            )
        if cost.interaction_pairs > self.max_interaction_pairs:
            raise TooCostly(
                "max_interaction_pairs", actions_field, cost.interaction_pairs, self.max_interaction_pairs
            )


def example_cost(context: Features, actions: Sequence[Action], vw_args: str) -> ExampleCost:
    """Count the features and the interaction pairs one decision over `actions` costs VW.

    Interactions are bounded from above: a term such as ``ua`` costs the product of
    the features in namespaces starting with ``u`` and with ``a`` (VW names a
    namespace by its first character), a wildcard ``:`` every feature of the line.

    Examples
    --------
    >>> cost = example_cost({"u": {"x": 1, "tags": ["a", "b"]}}, [Action("a1")], "--cb_explore_adf -q ::")
    >>> cost.context_features, cost.features_x_actions, cost.interaction_pairs
    (3, 4, 16)
    """
    shape = _interactions(vw_args)
    shared = _counts(context)
    shared_total = sum(shared.values())
    # Only interactions that name namespaces need each action's count per namespace;
    # the rank path runs this on every request, so the common case stays lean.
    if shape.named_terms:
        action_counts = [_counts(a.features) for a in actions]
        action_totals = [sum(c.values()) for c in action_counts]
    else:
        action_counts = []
        action_totals = _totals(actions)
    # every action line: the context's features, the action's own and its id
    base = shared_total + 1
    line_totals = [base + total for total in action_totals]
    pairs = 0
    for order in shape.wildcard_orders:  # -q :: and the like: a power of each line's size
        pairs += sum([line**order for line in line_totals])
    for term in shape.named_terms:
        for counts, line in zip(action_counts, line_totals, strict=True):
            product = 1
            for namespace in term:
                if namespace == ":":
                    product *= line
                else:
                    own = counts.get(namespace, 0) + (namespace == _ID_KEY)
                    product *= shared.get(namespace, 0) + own
            pairs += product
    return ExampleCost(shared_total, tuple(action_totals), sum(line_totals), pairs * shape.learners)


_ID_KEY = ACTION_ID_NAMESPACE[0]
_NAMESPACE_KEYS: dict[str, str] = {}  # namespace name -> the character VW knows it by


def _totals(actions: Sequence[Action]) -> list[int]:
    """Return each action's number of features after flattening (a list counts its items).

    One loop for all actions rather than a call each: this runs on every rank.
    """
    totals = []
    for action in actions:
        n = 0
        for values in action.features.values():
            n += len(values)
            for value in values.values():
                if type(value) is list:
                    n += len(value) - 1
                elif value is False:
                    n -= 1
        totals.append(n)
    return totals


def _counts(features: Features) -> dict[str, int]:
    """Return the features per VW namespace (its first character) after flattening."""
    counts: dict[str, int] = {}
    for namespace, values in features.items():
        n = len(values)
        for value in values.values():
            if type(value) is list:
                n += len(value) - 1
            elif value is False:
                n -= 1
        key = _NAMESPACE_KEYS.get(namespace)
        if key is None:
            if len(_NAMESPACE_KEYS) >= _ACTION_TEXT_LIMIT:
                _NAMESPACE_KEYS.clear()
            key = _NAMESPACE_KEYS[namespace] = escape(namespace)[0]
        counts[key] = counts.get(key, 0) + n
    return counts


@dataclass(frozen=True, slots=True)
class _Shape:
    wildcard_orders: tuple[int, ...]  # interactions of wildcards only (-q :: is 2)
    named_terms: tuple[str, ...]  # the others, one string of namespace characters each
    learners: int  # --bag N / --cover N learn N (N + 1) copies of every line


_INTERACTION_OPTIONS = frozenset({"quadratic", "cubic", "interactions"})
_LEARNER_OPTIONS = {"bag": 0, "cover": 1}  # copies = N + this
# What an argument string VW would refuse costs: the default policy's `-q ::`.
_UNREADABLE = _Shape((2,), (), 1)


@lru_cache(maxsize=64)
def _interactions(vw_args: str) -> _Shape:
    """Read the interaction and ensemble options out of `vw_args`, by VW's rules (vw_args.py)."""
    try:
        options = parse_vw_args(vw_args).options
    except ValueError:
        return _UNREADABLE  # no policy runs on such arguments; the cost check must not fail
    terms = [value for name, value in options if name in _INTERACTION_OPTIONS and value]
    learners = 1
    for name, value in options:
        if name in _LEARNER_OPTIONS and value is not None:
            learners *= int(value) + _LEARNER_OPTIONS[name]
    wildcards = tuple(len(t) for t in terms if set(t) == {":"})
    named = tuple(t for t in terms if set(t) != {":"})
    return _Shape(wildcards, named, learners)
