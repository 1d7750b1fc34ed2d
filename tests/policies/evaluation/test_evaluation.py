"""The evaluator on logs with a known truth: right values, honest coverage, clear refusals."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from policies.base import Action, Features, LoggedEvent, Ranking
from policies.evaluation.candidates import Fixed, uniform
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.estimators import InvalidLog
from policies.evaluation.replay import EvaluationOptions, evaluate
from policies.evaluation.reward_model import RewardModelOptions, cross_fit
from scripts.devtools.synthetic import DEVICES, SEGMENTS, SyntheticProblem, uniform_log


class BestOfferPolicy:
    """Knows the problem: always offers the best action for the shopper (a known truth)."""

    kind = "oracle"

    def __init__(self, problem: SyntheticProblem):
        self.problem = problem

    def rank(self, context: Features, actions, excluded) -> Ranking:
        key = (SEGMENTS.index(context["shopper"]["segment"]), DEVICES.index(context["shopper"]["device"]))
        best = int(np.argmax(self.problem.click_probability[key]))
        probabilities = np.zeros(len(actions))
        probabilities[best] = 1.0
        return Ranking(tuple(a.id for a in actions), probabilities)


def by_name(reports):
    return {(r.policy, e.estimator): e for r in reports for e in r.estimates}


@pytest.mark.slow
def test_estimates_of_a_known_policy_cover_its_true_value() -> None:
    problem = SyntheticProblem(seed=4)
    log = uniform_log(problem, 3000, seed=4)
    reports = evaluate(log, [Fixed("best", BestOfferPolicy(problem)), uniform()])
    found = by_name(reports)
    for estimator in ("IPS", "SNIPS", "DR", "SNDR"):
        best = found[("best", estimator)]
        # within two half-widths (about 4 standard errors): coverage itself is
        # measured over many seeds in tests/policies/evaluation/estimators/test_coverage.py
        assert abs(best.value - problem.best_value) <= best.high - best.low, (estimator, best)
    # DM is only as good as its reward model (biased towards the mean here), but
    # it must still tell the best policy far above uniform
    assert found[("best", "DM")].value > problem.uniform_value + 0.15
    # the log is uniform, so uniform's weights are all 1 and IPS is the logged mean
    assert found[("uniform", "IPS")].value == pytest.approx(found[("logged", "on-policy")].value)
    assert found[("uniform", "IPS")].ess == pytest.approx(3000)
    assert found[("best", "IPS")].ess == pytest.approx(3000 / 6, rel=0.15)


@pytest.mark.slow
def test_the_reward_model_makes_dr_tighter_than_ips() -> None:
    problem = SyntheticProblem(seed=5)
    found = by_name(evaluate(uniform_log(problem, 3000, seed=5), [Fixed("best", BestOfferPolicy(problem))]))
    ips, dr = found[("best", "IPS")], found[("best", "DR")]
    assert dr.high - dr.low < ips.high - ips.low


def test_two_slot_decisions_are_evaluated_with_both_slots() -> None:
    problem = SyntheticProblem(seed=6)
    log = uniform_log(problem, 2000, slots=2, seed=6)
    found = by_name(evaluate(log, [uniform()], EvaluationOptions(reward_model=None)))
    on_policy = found[("logged", "on-policy")]
    assert on_policy.value == pytest.approx(np.mean([sum(d.rewards) for d in log]))
    assert found[("uniform", "IPS")].value == pytest.approx(on_policy.value)
    assert found[("uniform", "SNIPS")].value == pytest.approx(on_policy.value)
    # two offers per decision earn more than one offer's click rate
    assert on_policy.value > problem.uniform_value * 1.5


def test_cross_fitted_predictions_come_from_models_that_never_saw_the_decision() -> None:
    # Rewards here are pure noise tied to a feature unique to each decision: a model
    # scoring its own training data would "predict" them; a cross-fitted one cannot.
    rng = np.random.default_rng(12345)  # not the fold seed: folds must not predict rewards
    actions = (Action("a"), Action("b"))
    log = []
    for i in range(2000):
        reward = float(rng.integers(0, 2))
        choice = dataclasses.replace(uniform_log(SyntheticProblem(), 1)[0].event.choices[0], action_id="a")
        event = LoggedEvent(
            f"e{i}", float(i), "v1", {"u": {"id": f"x{i}"}}, actions, frozenset(), (choice,), (), ()
        )
        log.append(LoggedDecision(event, (reward,)))
    predictions = cross_fit(log, RewardModelOptions(folds=2, seed=0))
    q_logged = np.array([p[0, 0] for p in predictions])
    rewards = np.array([d.rewards[0] for d in log])
    assert abs(np.corrcoef(q_logged, rewards)[0, 1]) < 0.1


@pytest.mark.slow
def test_the_reward_model_learns_which_offer_pays() -> None:
    problem = SyntheticProblem(seed=7)
    log = uniform_log(problem, 3000, seed=7)
    predictions = cross_fit(log, RewardModelOptions())
    hits = 0
    for decision, q_hat in itertools.islice(zip(log, predictions, strict=True), 500):
        key = (
            SEGMENTS.index(decision.event.context["shopper"]["segment"]),
            DEVICES.index(decision.event.context["shopper"]["device"]),
        )
        hits += int(np.argmax(q_hat[0])) == int(np.argmax(problem.click_probability[key]))
    assert hits / 500 > 0.6  # chance is 1/6


def test_reward_model_predicts_nothing_for_actions_that_could_not_appear() -> None:
    problem = SyntheticProblem(seed=8)
    log = uniform_log(problem, 50, slots=2, seed=8)
    first = log[0]
    shown = {c.action_id for c in first.event.choices}
    hidden = next(a.id for a in first.event.actions if a.id not in shown)  # excluded, so never shown
    excluded_event = dataclasses.replace(first.event, excluded=frozenset({hidden}))
    log[0] = LoggedDecision(excluded_event, first.rewards)
    q_hat = cross_fit(log, RewardModelOptions())[0]
    ids = [a.id for a in excluded_event.actions]
    assert (q_hat[:, ids.index(hidden)] == 0).all()
    assert q_hat[1, ids.index(excluded_event.choices[0].action_id)] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: dataclasses.replace(d, rewards=(float("nan"),)), "reward"),
        (lambda d: _with_propensity(d, 0.0), "propensity 0.0"),
        (lambda d: _with_propensity(d, 1.5), "propensity 1.5"),
        (lambda d: _with_propensity(d, None), "propensity None"),
    ],
)
def test_bad_decisions_are_refused_naming_the_event(change, message) -> None:
    log = uniform_log(SyntheticProblem(), 20)
    log[7] = change(log[7])
    with pytest.raises(InvalidLog, match=message) as error:
        evaluate(log, [uniform()])
    assert "'e7'" in str(error.value)


def test_an_empty_log_is_refused() -> None:
    with pytest.raises(InvalidLog, match="empty"):
        evaluate([], [uniform()])


def test_a_candidate_that_covers_nothing_is_reported_not_dropped() -> None:
    log = uniform_log(SyntheticProblem(), 20)
    reports = evaluate(log, [Fixed("model:v9", uniform().policy, available_from=1e12)])
    assert reports[1].policy == "model:v9"
    assert reports[1].n == 0 and reports[1].estimates == ()
    assert "no decisions" in reports[1].note


def _with_propensity(decision: LoggedDecision, probability: float | None) -> LoggedDecision:
    choice = dataclasses.replace(decision.event.choices[0], probability=probability)
    return LoggedDecision(dataclasses.replace(decision.event, choices=(choice,)), decision.rewards)
