"""Personalizer feature objects → xsell namespaces.

Personalizer took context and action features as a list of JSON objects. A key
whose value is an object names a namespace (``{"user": {"tier": "gold"}}``); other
top-level keys go to a default namespace. Inside a namespace, nested objects are
flattened with dotted names (``device.os``), lists of strings stay lists (one
indicator each), other lists are flattened by index, and nulls are left out. Keys
that start with ``_`` are ignored, as Personalizer ignored them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from policies.base import FeatureValue
from service.errors import InvalidField

__all__ = ["DEFAULT_NAMESPACE", "FeatureError", "to_namespaces"]

DEFAULT_NAMESPACE = "default"
MAX_NAMESPACES = 32
MAX_FEATURES = 256  # per namespace
MAX_DEPTH = 8
MAX_TEXT = 256
MAX_NAME = 128


class FeatureError(InvalidField):
    """A feature object cannot be used; `field` says where it is."""


def to_namespaces(objects: Sequence[Any] | None, field: str) -> dict[str, dict[str, FeatureValue]]:
    """Return the namespaces a list of Personalizer feature objects describes.

    Raises
    ------
    FeatureError
        An element is not an object, a value is not a usable feature, or there are
        too many namespaces or features.
    """
    namespaces: dict[str, dict[str, FeatureValue]] = {}
    for index, item in enumerate(objects or ()):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise FeatureError(where, "each feature entry must be a JSON object")
        for key, value in item.items():
            if key.startswith("_") or value is None:
                continue
            if isinstance(value, Mapping):
                target = namespaces.setdefault(_name(key, where), {})
                _flatten(value, "", target, f"{where}.{key}", depth=1)
            else:
                target = namespaces.setdefault(DEFAULT_NAMESPACE, {})
                _flatten({key: value}, "", target, where, depth=1)
            if len(namespaces) > MAX_NAMESPACES:
                raise FeatureError(field, f"at most {MAX_NAMESPACES} namespaces")
    return {ns: values for ns, values in namespaces.items() if values}


def _flatten(
    value: Mapping[str, Any], prefix: str, into: dict[str, FeatureValue], where: str, depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise FeatureError(where, f"features may nest at most {MAX_DEPTH} levels")
    for key, item in value.items():
        if key.startswith("_") or item is None:
            continue
        name = _name(f"{prefix}{key}", where)
        here = f"{where}.{key}"
        if isinstance(item, Mapping):
            _flatten(item, f"{name}.", into, here, depth + 1)
        elif isinstance(item, list):
            if item and all(isinstance(x, str) for x in item):
                _put(into, name, [_text(x, here) for x in item], here)
            else:
                _flatten({str(i): x for i, x in enumerate(item)}, f"{name}.", into, here, depth + 1)
        else:
            _put(into, name, _scalar(item, here), here)


def _put(into: dict[str, FeatureValue], name: str, value: FeatureValue, where: str) -> None:
    into[name] = value
    if len(into) > MAX_FEATURES:
        raise FeatureError(where, f"at most {MAX_FEATURES} features per namespace")


def _scalar(value: Any, where: str) -> FeatureValue:
    if isinstance(value, bool | str):
        return _text(value, where) if isinstance(value, str) else value
    if isinstance(value, int | float):
        # Compare before converting: float() of an integer past ~1e308 raises OverflowError.
        if abs(value) > 2**53 or not math.isfinite(value):
            raise FeatureError(where, "numbers must be finite and within ±2**53")
        return value
    raise FeatureError(where, "must be a string, a number, a boolean, an object or a list")


def _text(value: str, where: str) -> str:
    if len(value) > MAX_TEXT:
        raise FeatureError(where, f"strings may have at most {MAX_TEXT} characters")
    return value


def _name(name: str, where: str) -> str:
    if not name or len(name) > MAX_NAME:
        raise FeatureError(where, f"feature names must have 1 to {MAX_NAME} characters")
    return name
