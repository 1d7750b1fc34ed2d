"""Read logs in the Open Bandit Dataset's CSV layout (Saito et al., NeurIPS 2021).

A directory holds ``all.csv`` (one row per impression: timestamp, item_id,
position, click, propensity_score, user_feature_*, user-item_affinity_*) and,
optionally, ``item_context.csv`` (item_id, item_feature_*). Each row becomes one
single-slot decision: the context is the user's features plus the position
shown (as obp itself treats positions) and the user's non-zero item affinities;
the candidates are every item, with its item features; the reward is the click.
The logging policy's full distribution is not in the files, only the propensity
of the item shown, which is all IPS, SNIPS, DM and DR need.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

from policies.base import Action, FeatureValue, LoggedEvent, SlotChoice
from policies.evaluation.dataset import LoggedDecision

__all__ = ["ObdFormatError", "read_obd"]

REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")
AFFINITY_PREFIX = "user-item_affinity_"


class ObdFormatError(ValueError):
    """The files are not in the Open Bandit Dataset layout; the message says where."""


def read_obd(directory: Path, *, limit: int | None = None) -> list[LoggedDecision]:
    """Return the decisions in `directory` (at most `limit`), in file order."""
    directory = Path(directory)
    log_path = directory / "all.csv"
    if not log_path.is_file():
        raise ObdFormatError(f"{log_path}: not found (expected the Open Bandit Dataset's all.csv)")
    actions = _read_items(directory / "item_context.csv")
    source = f"obd:{directory.parent.name}/{directory.name}"
    decisions: list[LoggedDecision] = []
    with log_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [name for name in REQUIRED if name not in columns]
        if missing:
            raise ObdFormatError(f"{log_path}: missing column(s) {', '.join(missing)}")
        user_columns = [c for c in columns if c.startswith("user_feature_")]
        affinity_columns = [c for c in columns if c.startswith(AFFINITY_PREFIX)]
        for line, row in enumerate(reader, start=2):
            if limit is not None and len(decisions) >= limit:
                break
            decisions.append(_decision(row, line, log_path, source, actions, user_columns, affinity_columns))
    return decisions


def _decision(
    row: dict[str, str],
    line: int,
    path: Path,
    source: str,
    items: dict[str, Action],
    user_columns: list[str],
    affinity_columns: list[str],
) -> LoggedDecision:
    def number(column: str) -> float:
        text = row.get(column) or ""
        try:
            value = float(text)
        except ValueError:
            raise ObdFormatError(f"{path} line {line}: {column} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ObdFormatError(f"{path} line {line}: {column} {text!r} is not finite")
        return value

    item_id = row["item_id"].strip()
    actions = tuple(items.values()) if items else ()
    if items and item_id not in items:
        raise ObdFormatError(f"{path} line {line}: item_id {item_id!r} is not in item_context.csv")
    if not items:
        actions = (Action(item_id),)
    try:
        created_at = datetime.fromisoformat(row["timestamp"]).timestamp()
    except ValueError:
        raise ObdFormatError(f"{path} line {line}: timestamp {row['timestamp']!r} is not a date") from None
    affinities = {c.removeprefix(AFFINITY_PREFIX): number(c) for c in affinity_columns}
    context: dict[str, dict[str, FeatureValue]] = {
        "user": {c: row[c] for c in user_columns},
        "position": {"position": row["position"].strip()},
        "affinity": {f"item_{k}": v for k, v in affinities.items() if v != 0},
    }
    event = LoggedEvent(
        event_id=f"{source}:{line - 1}",
        created_at=created_at,
        model_version=source,
        context=context,
        actions=actions,
        excluded=frozenset(),
        choices=(SlotChoice(0, item_id, number("propensity_score")),),
        probabilities=(),
        feedback=(),
    )
    return LoggedDecision(event, (number("click"),))


def _read_items(path: Path) -> dict[str, Action]:
    """Return every item as an Action with its features, or {} when the file is absent."""
    if not path.is_file():
        return {}
    items: dict[str, Action] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if "item_id" not in (reader.fieldnames or []):
            raise ObdFormatError(f"{path}: missing column item_id")
        feature_columns = [c for c in reader.fieldnames or [] if c.startswith("item_feature_")]
        for row in reader:
            features: dict[str, FeatureValue] = {}
            for column in feature_columns:
                text = row[column]
                try:
                    value = float(text)
                except ValueError:
                    features[column] = text  # a hashed category
                else:
                    features[column] = value if math.isfinite(value) else text
            item_id = row["item_id"].strip()
            items[item_id] = Action(item_id, {"item": features})
    return items
