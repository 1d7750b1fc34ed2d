"""Write small logs in the Open Bandit Dataset's layout (tests never read ../shared)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

N_ITEMS = 5


def write_obd(
    directory: Path,
    *,
    rows: int = 200,
    seed: int = 0,
    items: bool = True,
    broken: dict[int, dict] | None = None,
) -> Path:
    """Write all.csv (uniform logging over N_ITEMS items, 3 positions) and item_context.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    click_rate = np.linspace(0.05, 0.4, N_ITEMS)
    header = ["", "timestamp", "item_id", "position", "click", "propensity_score"]
    header += [f"user_feature_{k}" for k in range(2)] + [f"user-item_affinity_{k}" for k in range(N_ITEMS)]
    with (directory / "all.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(rows):
            item = int(rng.integers(N_ITEMS))
            row = {
                "": i,
                "timestamp": f"2019-11-24 00:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00",
                "item_id": item,
                "position": int(rng.integers(1, 4)),
                "click": int(rng.random() < click_rate[item]),
                "propensity_score": 1 / N_ITEMS,
                "user_feature_0": f"u{int(rng.integers(3))}",
                "user_feature_1": "abc",
            }
            row.update({f"user-item_affinity_{k}": float(k == item and i % 2) for k in range(N_ITEMS)})
            row.update((broken or {}).get(i, {}))
            writer.writerow([row[name] for name in header])
    if items:
        with (directory / "item_context.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["", "item_id", "item_feature_0", "item_feature_1"])
            for k in range(N_ITEMS):
                writer.writerow([k, k, k / 10, f"kind{k % 2}"])
    return directory
