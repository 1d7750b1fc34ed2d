"""Drive the whole loop on simulated shoppers with a clock under the caller's control.

Requests go through the real app (Flask test client), decisions and feedback land in
a real SQLite log, the real learner learns them and the app reloads its snapshots;
only time is simulated. A round advances the clock, ranks for one shopper, and
schedules what the shopper will do: a click some seconds later and, for some offers,
a purchase minutes after the click. So the same run gives the same numbers on any
machine, and learning designs can be compared on signals that arrive late.

Used by tests/service/test_learning.py and ``xsell bench learning`` (docs/exploration.md).
"""

from __future__ import annotations

import heapq
import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from policies.base import Ranking
from scripts.devtools.synthetic import DEVICES, SEGMENTS, SyntheticProblem
from scripts.learn import build_learner
from service.app import create_app
from service.settings import Settings

__all__ = ["DESIGNS", "Clock", "LoopRun", "run_loop"]

Design = Literal["horizon", "first-signal", "whole-window"]
DESIGNS: tuple[Design, ...] = ("horizon", "first-signal", "whole-window")
PURCHASE_VALUE = 200.0  # a purchase earns 1 + 0.005 x 200 = 2 under the default rules


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class LoopRun:
    """What one simulated run learned: the served value after each checkpoint."""

    design: str
    rounds: int
    served_values: tuple[float, ...]  # expected reward of the served policy at each checkpoint
    uniform_value: float
    best_value: float
    corrections: int
    checkpoints: tuple[int, ...] = field(default=())


def run_loop(
    *,
    design: Design = "horizon",
    rounds: int = 3000,
    seconds_per_round: float = 1.0,
    window_seconds: float = 600.0,
    first_learn_seconds: float = 1.0,
    click_delay_seconds: float = 0.0,
    purchase_delay_seconds: float = 180.0,
    purchase_share: tuple[float, ...] = (),
    step_every: int = 10,
    checkpoints: int = 6,
    seed: int = 0,
    vw_args: str | None = None,
    data_dir: Path | None = None,
    never_click: bool = False,
) -> LoopRun:
    """Run `rounds` simulated shoppers through the real loop; return what it learned.

    ``horizon`` learns every decision `first_learn_seconds` after it was made and
    later signals as corrections (xsell's design); ``first-signal`` learns an event at
    its first signal (or its window's end) and ignores later ones (the design before
    it); ``whole-window`` learns each event once, at its window's end (Personalizer's).
    `purchase_share[k]`: the share of clicks on offer k followed by a purchase;
    `never_click`: nobody ever answers (a control: nothing to learn).
    """
    with tempfile.TemporaryDirectory() if data_dir is None else _kept(data_dir) as directory:
        return _run(
            Path(directory),
            design=design,
            rounds=rounds,
            seconds_per_round=seconds_per_round,
            window_seconds=window_seconds,
            first_learn_seconds=window_seconds if design == "whole-window" else first_learn_seconds,
            click_delay_seconds=click_delay_seconds,
            purchase_delay_seconds=purchase_delay_seconds,
            purchase_share=purchase_share,
            step_every=step_every,
            checkpoints=checkpoints,
            seed=seed,
            vw_args=vw_args,
            never_click=never_click,
        )


def _run(
    directory: Path,
    *,
    design: Design,
    rounds: int,
    seconds_per_round: float,
    window_seconds: float,
    first_learn_seconds: float,
    click_delay_seconds: float,
    purchase_delay_seconds: float,
    purchase_share: tuple[float, ...],
    step_every: int,
    checkpoints: int,
    seed: int,
    vw_args: str | None,
    never_click: bool,
) -> LoopRun:
    overrides: dict[str, object] = {"vw_args": vw_args} if vw_args else {}
    settings = Settings(
        data_dir=directory / "var",
        reward_window_seconds=window_seconds,
        first_learn_seconds=first_learn_seconds,
        learner_grace_seconds=0.0,
        snapshot_interval_seconds=0.0,
        guardrail_enabled=False,
        demo_catalog=False,
        **overrides,  # type: ignore[arg-type]
    )
    clock = Clock()
    app = create_app(settings, clock=clock)
    resources = app.extensions["xsell"]
    client = app.test_client()
    learner, learner_store = build_learner(settings, clock=clock)
    learner.start()
    problem = SyntheticProblem(seed=seed)
    shares = np.asarray(purchase_share or (0.0,) * len(problem.actions), dtype=np.float64)
    rng = np.random.default_rng(seed)
    actions = [{"id": a.id, "features": a.features} for a in problem.actions]
    pending: list[tuple[float, int, str, str]] = []  # (due, order, event id, signal)
    order = itertools.count()
    every = max(1, rounds // checkpoints)
    values: list[float] = []
    marks: list[int] = []
    try:
        for round_index in range(rounds):
            clock.now += seconds_per_round
            _deliver(client, pending, clock.now)
            context, key = problem.draw_context(rng)
            body = {"event_id": f"s{seed}-{round_index}", "context": context, "actions": actions}
            answer = client.post("/v1/rank", json=body).get_json()
            chosen = answer["chosen"][0]
            # Every design sees the same shoppers: the same draws, whatever is done with them.
            clicks = problem.clicks(rng, key, chosen) and not never_click
            clicked_at = clock.now + (rng.exponential(click_delay_seconds) if click_delay_seconds else 0.0)
            buys = rng.random() < shares[problem._index(chosen)]
            bought_at = clicked_at + rng.exponential(purchase_delay_seconds)
            event_id = answer["event_id"]
            if clicks:
                heapq.heappush(pending, (clicked_at, next(order), event_id, "click"))
                # Learning at the first signal closed the event: a later purchase was late.
                if buys and design != "first-signal":
                    heapq.heappush(pending, (bought_at, next(order), event_id, "purchase"))
            if design == "first-signal":
                _learn_at(resources.store, event_id, clicked_at if clicks else clock.now + window_seconds)
            _deliver(client, pending, clock.now)
            if round_index % step_every == step_every - 1:
                learner.step()
                resources.served.refresh()
            if round_index % every == every - 1:
                values.append(_served_value(resources, problem, shares))
                marks.append(round_index + 1)
    finally:
        learner_store.close()
        resources.store.close()
    return LoopRun(
        design=design,
        rounds=rounds,
        served_values=tuple(values),
        uniform_value=float(np.mean(problem.click_probability * (1 + shares))),
        best_value=float(np.mean((problem.click_probability * (1 + shares)).max(axis=2))),
        corrections=learner.corrections,
        checkpoints=tuple(marks),
    )


def _deliver(client: object, pending: list[tuple[float, int, str, str]], now: float) -> None:
    """Post every signal due by `now`, oldest first."""
    while pending and pending[0][0] <= now:
        _, _, event_id, signal = heapq.heappop(pending)
        body = {"signal": signal, "value": PURCHASE_VALUE} if signal == "purchase" else {"signal": signal}
        client.post(f"/v1/events/{event_id}/feedback", json=body)  # type: ignore[attr-defined]


def _learn_at(store: object, event_id: str, at: float) -> None:
    """Emulate learning at the first signal: the event becomes due when it arrives."""
    conn = store.conn  # type: ignore[attr-defined]
    with conn:
        conn.execute("UPDATE decisions SET learn_at = ? WHERE event_id = ?", (at, event_id))


def _served_value(resources: object, problem: SyntheticProblem, shares: np.ndarray) -> float:
    """The exact expected reward of what the app serves now, over every kind of shopper.

    Asked of the served policy directly: a rank request would log a decision and so
    change what is learned next.
    """
    _, policy = resources.served.current()  # type: ignore[attr-defined]
    values = []
    for s, d in itertools.product(range(len(SEGMENTS)), range(len(DEVICES))):
        context = {"shopper": {"segment": SEGMENTS[s], "device": DEVICES[d]}}
        ranking: Ranking = policy.rank(context, problem.actions, frozenset())
        worth = problem.click_probability[(s, d)] * (1 + shares)
        values.append(
            float(
                sum(
                    p * worth[problem._index(a)]
                    for a, p in zip(ranking.action_ids, ranking.probabilities, strict=True)
                )
            )
        )
    return float(np.mean(values))


class _kept:
    """A directory the caller keeps (for inspecting a run's log afterwards)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def __exit__(self, *_: object) -> None:
        return None


def compare_designs(
    *, seeds: tuple[int, ...] = (1, 2, 3), rounds: int = 3600, **loop: object
) -> dict[str, list[LoopRun]]:
    """Run every learning design on the same simulated shoppers, once per seed."""
    return {
        design: [run_loop(design=design, rounds=rounds, seed=seed, **loop) for seed in seeds]  # type: ignore[arg-type]
        for design in DESIGNS
    }


def render_comparison(found: dict[str, list[LoopRun]]) -> str:
    """Return the served value per design at each checkpoint, averaged over seeds."""
    first = next(iter(found.values()))[0]
    header = f"{'design':<14}" + "".join(f"{mark:>9}" for mark in first.checkpoints) + f"{'corrections':>13}"
    lines = [
        "expected reward per decision of the served policy after N rounds (mean over seeds)",
        header,
    ]
    for design, runs in found.items():
        means = np.mean([run.served_values for run in runs], axis=0)
        corrections = np.mean([run.corrections for run in runs])
        lines.append(f"{design:<14}" + "".join(f"{v:9.3f}" for v in means) + f"{corrections:13.0f}")
    uniform = np.mean([run.uniform_value for run in next(iter(found.values()))])
    best = np.mean([run.best_value for run in next(iter(found.values()))])
    lines.append(f"uniform random {uniform:.3f}, best possible {best:.3f}")
    return "\n".join(lines)
