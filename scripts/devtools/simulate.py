"""`xsell simulate`: watch policies learn on the synthetic problem.

In-process mode runs the real policy, sampling and reward code without HTTP, fast
enough to compare exploration settings over several seeds; ``--url`` drives a
running service over HTTP instead, so the whole loop (log, learner, reload) is
exercised.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies.base import Feedback, LoggedEvent
from policies.deciding.sampling import choose, seed_for
from policies.deciding.vw import VWPolicy
from policies.learning.rewards import RewardRules
from scripts.devtools.synthetic import SyntheticProblem

EXPLORATION_CANDIDATES = (
    "--cb_explore_adf --epsilon 0.2 -q :: --power_t 0 -l 0.001 --cb_type mtr",
    "--cb_explore_adf --epsilon 0.05 -q :: --power_t 0 -l 0.001 --cb_type mtr",
    "--cb_explore_adf --epsilon 0.05 -q :: --cb_type mtr",
    "--cb_explore_adf --squarecb -q :: --cb_type mtr",
    "--cb_explore_adf --squarecb --gamma_scale 1000 -q :: --cb_type mtr",
    "--cb_explore_adf --softmax --lambda 10 -q :: --cb_type mtr",
    "--cb_explore_adf --bag 5 --epsilon 0.02 -q :: --cb_type mtr",
    "--cb_explore_adf --regcb -q :: --cb_type mtr",
)


@dataclass(frozen=True)
class SimulationResult:
    vw_args: str
    seed: int
    rounds: int
    online_reward: float  # mean click rate while learning (what shoppers saw)
    final_value: float  # exact click rate of the final policy's distribution
    best_value: float
    uniform_value: float
    seconds: float


def simulate_in_process(vw_args: str, *, rounds: int, seed: int, delay: int = 50) -> SimulationResult:
    """Serve and learn `rounds` decisions; rewards reach the learner `delay` rounds late."""
    problem = SyntheticProblem(seed=seed)
    rng = np.random.default_rng(seed + 1)
    policy = VWPolicy(vw_args)
    rules = RewardRules()
    waiting: list[tuple[LoggedEvent, float]] = []
    total = 0.0
    started = time.perf_counter()
    for round_index in range(rounds):
        context, key = problem.draw_context(rng)
        ranking = policy.rank(context, problem.actions, frozenset())
        event_id = f"sim-{seed}-{round_index}"
        choices = choose(ranking, 1, seed_for(event_id))
        clicked = problem.clicks(rng, key, choices[0].action_id)
        total += clicked
        feedback = (Feedback("click", choices[0].action_id, None, 0.0),) if clicked else ()
        event = LoggedEvent(
            event_id,
            0.0,
            "sim",
            context,
            problem.actions,
            frozenset(),
            choices,
            tuple(ranking.probabilities),
            feedback,
        )
        waiting.append((event, rules.reward_for(feedback, choices[0].action_id)))
        if len(waiting) >= delay:
            for logged, reward in waiting:
                policy.learn(logged, [reward])
            waiting.clear()
    final = _policy_value(policy, problem)
    return SimulationResult(
        vw_args,
        seed,
        rounds,
        total / rounds,
        final,
        problem.best_value,
        problem.uniform_value,
        time.perf_counter() - started,
    )


def _policy_value(policy: VWPolicy, problem: SyntheticProblem) -> float:
    from scripts.devtools.synthetic import DEVICES, SEGMENTS

    values = []
    for s, d in itertools.product(range(len(SEGMENTS)), range(len(DEVICES))):
        context = {"shopper": {"segment": SEGMENTS[s], "device": DEVICES[d]}}
        values.append(problem.value_of(policy.rank(context, problem.actions, frozenset()), (s, d)))
    return float(np.mean(values))


def simulate_http(
    base_url: str,
    *,
    rounds: int,
    seed: int,
    window: int = 500,
    every: int = 0,
    between: Callable[[], object] | None = None,
) -> list[float]:
    """Drive a running service over HTTP: the click rate of each `window` rounds; the last may be shorter.

    Event ids are named from the seed and the round, so the service's sampling repeats.
    With `every`, `between` is called every that many rounds (a test waits there until
    the learner and the workers have caught up, so what is learned does not depend on
    how fast the machine is).
    """
    from scripts.http import JsonClient

    problem = SyntheticProblem(seed=seed)
    rng = np.random.default_rng(seed + 1)
    actions = [{"id": a.id, "features": a.features} for a in problem.actions]
    client = JsonClient(base_url)
    rates, clicks = [], 0
    for round_index in range(rounds):
        context, key = problem.draw_context(rng)
        event_id = f"sim-{seed}-{round_index}"
        answer = client.post("/v1/rank", {"event_id": event_id, "context": context, "actions": actions})
        chosen = answer["chosen"][0]
        if problem.clicks(rng, key, chosen):
            clicks += 1
            client.post(f"/v1/events/{answer['event_id']}/feedback", {"signal": "click"})
        if (round_index + 1) % window == 0:
            rates.append(clicks / window)
            clicks = 0
        if every and between is not None and (round_index + 1) % every == 0:
            between()
    if rounds % window:  # the last, shorter window counts too (fewer rounds than a window: one rate)
        rates.append(clicks / (rounds % window))
    client.close()
    return rates
