"""Compare the reward models DM and DR can use, on real and synthetic logs, as docs/evaluation.md reports.

For every log and every kind, the model is cross-fitted exactly as ``xsell evaluate``
fits it; the table shows its held-out quality (Brier, skill over predicting the
mean, log-loss) and what DM and DR then estimate for one policy whose true value
is known:

- an Open Bandit Dataset directory: the uniform-random policy (its click rate,
  measured on the random campaign's own log, is the truth to compare with);
- the synthetic problem (``scripts/synthetic.py``), clicks: the policy that always
  shows each shopper's best offer, on a uniform-random log of 3,000 decisions;
- the same with shop rewards (a click worth 1, some clicks a purchase worth 5, some
  misses a dismissal worth -0.1), where the logistic kinds do not apply.

Run: ``python -m scripts.devtools.reward_model_check --obd DIR --synthetic`` (add ``--obp`` with
the dev extras to add obp's logistic regression, fitted as obp's examples fit it).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click
import numpy as np

from logs.obd import read_obd
from policies.base import Action, Features, Ranking
from policies.evaluation.candidates import Fixed, uniform
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.replay import EvaluationOptions, evaluate_log
from policies.evaluation.reward_model import KINDS, RewardModelOptions
from scripts.devtools.synthetic import DEVICES, SEGMENTS, SyntheticProblem, uniform_log

__all__ = ["main", "shop_rewards"]

BINARY_KINDS = [k for k in KINDS if k != "auto"]
VALUED_KINDS = ["linear", "vw-squared", "action-mean"]


class BestOffer:
    """Always the shopper's best offer in the synthetic problem: a policy whose value is known."""

    kind = "oracle"

    def __init__(self, problem: SyntheticProblem):
        self.problem = problem

    def rank(self, context: Features, actions: tuple[Action, ...], excluded: frozenset[str]) -> Ranking:
        key = (SEGMENTS.index(context["shopper"]["segment"]), DEVICES.index(context["shopper"]["device"]))
        probabilities = np.zeros(len(actions))
        probabilities[int(np.argmax(self.problem.click_probability[key]))] = 1.0
        return Ranking(tuple(a.id for a in actions), probabilities)


def shop_rewards(decisions: list[LoggedDecision], seed: int = 0) -> list[LoggedDecision]:
    """Turn clicks into shop rewards: 30% of clicks a purchase worth 5, 10% of misses a dismissal (-0.1)."""
    rng = np.random.default_rng(seed)
    changed = []
    for decision in decisions:
        rewards = []
        for clicked in decision.rewards:
            draw = rng.random()
            rewards.append((5.0 if draw < 0.3 else 1.0) if clicked else (-0.1 if draw < 0.1 else 0.0))
        changed.append(dataclasses.replace(decision, rewards=tuple(rewards)))
    return changed


def rows_for(name: str, decisions: list[LoggedDecision], candidate: Fixed, kinds: list[str]) -> list[str]:
    """Fit every kind on `decisions`; return one table row each."""
    rows = []
    for kind in kinds:
        started = time.perf_counter()
        options = EvaluationOptions(reward_model=RewardModelOptions(kind=kind))
        evaluation = evaluate_log(decisions, [candidate], options)
        seconds = time.perf_counter() - started
        quality = evaluation.reward_model
        assert quality is not None
        estimates = {e.estimator: e for e in evaluation.reports[1].estimates}
        log_loss = "-" if quality.log_loss is None else f"{quality.log_loss:.4f}"
        cells = [
            name,
            kind,
            f"{quality.brier:.6f}",
            f"{quality.skill:+.4f}",
            log_loss,
            f"{quality.mean_prediction:.4f}",
            *(
                f"{estimates[e].value:.4f} ±{(estimates[e].high - estimates[e].low) / 2:.4f}"
                for e in ("DM", "DR")
            ),
            f"{estimates['IPS'].value:.4f} ±{(estimates['IPS'].high - estimates['IPS'].low) / 2:.4f}",
            f"{seconds:.1f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def obp_rows(directory: Path, ours: dict[str, np.ndarray]) -> list[str]:
    """obp's RegressionModel with sklearn's LogisticRegression (dev extras), on obp's own features."""
    import pandas as pd
    from obp.ope import RegressionModel
    from sklearn.linear_model import LogisticRegression

    data = pd.read_csv(directory / "all.csv", index_col=0)
    items = pd.read_csv(directory / "item_context.csv", index_col=0)
    # obp 0.4.1's OpenBanditDataset.pre_process, spelled for today's pandas
    users = pd.get_dummies(data.filter(like="user_feature"), drop_first=True).to_numpy(dtype=float)
    context = np.c_[users, data.filter(like="user-item_affinity").to_numpy(dtype=float)]
    categories = items.drop(columns=["item_id", "item_feature_0"]).apply(lambda c: pd.factorize(c)[0])
    action_context = np.c_[items["item_feature_0"].to_numpy(), categories.to_numpy()]
    action, position = data["item_id"].to_numpy(), (data["position"] - 1).to_numpy()
    reward = data["click"].to_numpy(dtype=float)
    model = RegressionModel(
        n_actions=len(items),
        len_list=int(position.max()) + 1,
        action_context=action_context,
        base_model=LogisticRegression(C=1.0, max_iter=10_000, random_state=0),
    )
    q_hat = model.fit_predict(
        context=context, action=action, reward=reward, position=position, n_folds=2, random_state=0
    )
    rows_ = np.arange(len(action))
    logged = q_hat[rows_, action, position]
    brier, baseline = np.mean((logged - reward) ** 2), np.mean((reward.mean() - reward) ** 2)
    clipped = np.clip(logged, 1e-6, 1 - 1e-6)
    log_loss = np.mean(-(reward * np.log(clipped) + (1 - reward) * np.log(1 - clipped)))
    all_actions = q_hat[rows_, :, position]
    lines = [
        f"obp LogisticRegression(C=1), 2 folds: Brier {brier:.6f}, skill {1 - brier / baseline:+.4f}, "
        f"log-loss {log_loss:.4f}, mean prediction {logged.mean():.4f}"
    ]
    for kind, predictions in ours.items():
        correlation = np.corrcoef(predictions.ravel(), all_actions.ravel())[0, 1]
        lines.append(
            f"correlation of {kind}'s predictions (every item, every row) with obp's: {correlation:.3f}"
        )
    return lines


@click.command()
@click.option("--obd", "obd_dirs", multiple=True, type=click.Path(file_okay=False, exists=True))
@click.option("--synthetic", is_flag=True, help="Also the synthetic problem, clicks and shop rewards.")
@click.option("--obp", is_flag=True, help="Compare with obp's logistic regression (needs the dev extras).")
def main(obd_dirs: tuple[str, ...], synthetic: bool, obp: bool) -> None:
    """Print the reward-model comparison table of docs/evaluation.md."""
    header = "| log | reward model | Brier | skill | log-loss | mean q̂ | DM ± half-width | DR | IPS | s |"
    click.echo(header)
    click.echo("|" + " --- |" * (header.count("|") - 1))
    notes: list[str] = []
    for text in obd_dirs:
        directory = Path(text)
        decisions = read_obd(directory)
        name = f"OBD {directory.parent.name}, uniform"
        notes.append(f"{name}: the log's own mean reward {np.mean([d.rewards[0] for d in decisions]):.4f}")
        for row in rows_for(name, decisions, uniform(), BINARY_KINDS):
            click.echo(row)
        if obp:
            from policies.evaluation.reward_model import fit

            ours = {
                kind: np.array([p[0] for p in fit(decisions, RewardModelOptions(kind=kind)).predictions])
                for kind in ("logistic", "vw-squared")
            }
            notes += [f"{name}:", *obp_rows(directory, ours)]
    if synthetic:
        problem = SyntheticProblem(seed=4)
        log = uniform_log(problem, 3000, seed=4)
        best = Fixed("best offer", BestOffer(problem))
        for row in rows_for("synthetic clicks, best offer", log, best, BINARY_KINDS):
            click.echo(row)
        for row in rows_for("synthetic shop rewards, best offer", shop_rewards(log), best, VALUED_KINDS):
            click.echo(row)
        truth = np.array(
            [
                problem.click_probability[
                    SEGMENTS.index(d.event.context["shopper"]["segment"]),
                    DEVICES.index(d.event.context["shopper"]["device"]),
                    [a.id for a in d.event.actions].index(d.event.choices[0].action_id),
                ]
                for d in log
            ]
        )
        notes.append(
            "synthetic clicks: the true click probabilities would score Brier "
            f"{np.mean(truth * (1 - truth)):.6f}"
        )
        best_click = problem.click_probability.max(axis=2)
        shop_value = float(np.mean(best_click * 2.2 - (1 - best_click) * 0.01))
        notes.append(
            f"synthetic truth: best offer {problem.best_value:.4f} clicks, "
            f"{shop_value:.4f} shop reward per decision"
        )
    for note in notes:
        click.echo(note)


if __name__ == "__main__":
    main()
