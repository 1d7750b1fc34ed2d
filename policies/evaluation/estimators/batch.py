"""EvalBatch: the arrays every estimator reads, checked once.

A decision may fill several slots. Slot ``k`` was drawn from the logging policy's
distribution restricted to the actions not chosen for slots ``< k`` and
renormalised, so the log holds, per slot, the *conditional* probability
``p_log[i, k] = π_b(a_ik | x_i, a_i<k)``. ``p_target[i, k]`` is the same
conditional probability under the policy being evaluated.

Multi-slot decisions are evaluated with the cascade (reward-interaction)
assumption of McInerney et al. (2020) and Kiyohara et al. (2022): the reward at
slot ``k`` may depend on the offers above it but not on those below. The
importance weight of slot ``k`` is then the ratio of prefix probabilities,

.. math:: w_{ik} = \\prod_{j \\le k} p^{target}_{ij} / p^{log}_{ij},

which is unbiased under that assumption, needs no model of how slots interact,
and has far less variance than the whole-slate ratio (standard slate IPS) while
staying honest when a second offer is judged next to the first (the independent
IPS alternative would not be). For one slot it is the ordinary importance weight.

References
----------
McInerney, Brost, Chandar, Mehrotra, Carterette. "Counterfactual Evaluation of
Slate Recommendations with Sequential Reward Interactions". KDD 2020.
Kiyohara, Saito, Matsuhiro, Narita, Shimizu, Yamamoto. "Doubly Robust Off-Policy
Evaluation for Ranking Policies under the Cascade Behavior Model". WSDM 2022.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EvalBatch", "InvalidLog"]


class InvalidLog(ValueError):
    """The log cannot be evaluated as it is (empty, or bad propensities or rewards)."""


@dataclass(frozen=True, slots=True)
class EvalBatch:
    """Logged decisions and one target policy's view of them, as arrays of shape (n, slots).

    Attributes
    ----------
    reward : ndarray, shape (n, slots)
        Reward observed at each slot; 0 where ``mask`` is False.
    p_log : ndarray, shape (n, slots)
        Conditional probability with which the logging policy chose the logged
        action at each slot, in (0, 1]; 1 where ``mask`` is False.
    p_target : ndarray, shape (n, slots)
        Conditional probability of the same action, given the same earlier slots,
        under the target policy, in [0, 1].
    mask : ndarray of bool, shape (n, slots)
        True where the decision filled the slot; each row is a prefix of True values.
    q_hat_logged : ndarray, shape (n, slots), optional
        Reward model's prediction for the logged action at each slot.
    q_hat_target : ndarray, shape (n, slots), optional
        Reward model's prediction averaged over the target's conditional
        distribution at each slot, ``Σ_a π_e(a | x, a_<k) q̂_k(x, a)``.
    """

    reward: np.ndarray
    p_log: np.ndarray
    p_target: np.ndarray
    mask: np.ndarray
    q_hat_logged: np.ndarray | None = None
    q_hat_target: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def single_slot(
        cls,
        reward: np.ndarray,
        p_log: np.ndarray,
        p_target: np.ndarray,
        q_hat_logged: np.ndarray | None = None,
        q_hat_target: np.ndarray | None = None,
    ) -> EvalBatch:
        """Build a batch of one-slot decisions from arrays of shape (n,)."""

        def column(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else np.asarray(values, dtype=np.float64).reshape(-1, 1)

        reward_column = column(reward)
        assert reward_column is not None
        return cls(
            reward=reward_column,
            p_log=column(p_log),  # type: ignore[arg-type]
            p_target=column(p_target),  # type: ignore[arg-type]
            mask=np.ones_like(reward_column, dtype=bool),
            q_hat_logged=column(q_hat_logged),
            q_hat_target=column(q_hat_target),
        )

    @classmethod
    def from_dense(
        cls,
        action: np.ndarray,
        reward: np.ndarray,
        p_log: np.ndarray,
        action_dist: np.ndarray,
        q_hat: np.ndarray | None = None,
    ) -> EvalBatch:
        """Build a one-slot batch from a fixed action set, in Open Bandit Pipeline's layout.

        Parameters
        ----------
        action : ndarray of int, shape (n,)
            Index of the logged action.
        reward, p_log : ndarray, shape (n,)
        action_dist : ndarray, shape (n, n_actions)
            Target policy's distribution over actions for each decision.
        q_hat : ndarray, shape (n, n_actions), optional
            Reward model's prediction for every action.
        """
        rows = np.arange(len(action))
        action_dist = np.asarray(action_dist, dtype=np.float64)
        q_logged = q_target = None
        if q_hat is not None:
            q_hat = np.asarray(q_hat, dtype=np.float64)
            q_logged = q_hat[rows, action]
            q_target = (action_dist * q_hat).sum(axis=1)
        return cls.single_slot(reward, p_log, action_dist[rows, action], q_logged, q_target)

    @property
    def n(self) -> int:
        """Number of decisions."""
        return int(self.reward.shape[0])

    @property
    def has_reward_model(self) -> bool:
        """Whether DM-based estimators can run on this batch."""
        return self.q_hat_logged is not None and self.q_hat_target is not None

    def weights(self) -> np.ndarray:
        """Return cascade importance weights ``Π_{j≤k} p_target/p_log``, 0 where unfilled."""
        ratio = np.where(self.mask, self.p_target / self.p_log, 1.0)
        return np.cumprod(ratio, axis=1) * self.mask

    def prefix_weights(self) -> np.ndarray:
        """Return the weight of the slots above each slot (1 for the first), 0 where unfilled."""
        weights = self.weights()
        prefix = np.ones_like(weights)
        prefix[:, 1:] = weights[:, :-1]
        return prefix * self.mask

    def take(self, rows: np.ndarray) -> EvalBatch:
        """Return the decisions at `rows` (used by the bootstrap)."""

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[rows]

        return EvalBatch(
            self.reward[rows],
            self.p_log[rows],
            self.p_target[rows],
            self.mask[rows],
            pick(self.q_hat_logged),
            pick(self.q_hat_target),
        )


def _check(batch: EvalBatch) -> None:
    """Refuse arrays no estimator could give an honest answer from."""
    if batch.reward.ndim != 2 or batch.reward.shape[0] == 0:
        raise InvalidLog("no decisions to evaluate: the log is empty")
    shape = batch.reward.shape
    named = {
        "p_log": batch.p_log,
        "p_target": batch.p_target,
        "mask": batch.mask,
        "q_hat_logged": batch.q_hat_logged,
        "q_hat_target": batch.q_hat_target,
    }
    for name, values in named.items():
        if values is not None and values.shape != shape:
            raise InvalidLog(f"{name} has shape {values.shape}, expected {shape}")
    if not batch.mask[:, 0].all():
        raise InvalidLog("every decision must fill its first slot")
    if (batch.mask[:, 1:] & ~batch.mask[:, :-1]).any():
        raise InvalidLog("a decision fills a slot below an empty one")
    _check_values("reward", batch.reward, batch.mask, low=None, high=None)
    _check_values("propensity (p_log)", batch.p_log, batch.mask, low=0.0, high=1.0, low_open=True)
    _check_values("target probability (p_target)", batch.p_target, batch.mask, low=0.0, high=1.0)
    for name in ("q_hat_logged", "q_hat_target"):
        values = named[name]
        if values is not None:
            _check_values(name, values, batch.mask, low=None, high=None)


def _check_values(
    name: str,
    values: np.ndarray,
    mask: np.ndarray,
    *,
    low: float | None,
    high: float | None,
    low_open: bool = False,
) -> None:
    filled = values[mask]
    bad = ~np.isfinite(filled)
    if low is not None:
        bad |= filled <= low if low_open else filled < low
    if high is not None:
        bad |= filled > high + 1e-9
    if bad.any():
        first = filled[bad][0]
        where = "(0, 1]" if low_open else f"[{low}, {high}]" if low is not None else "finite"
        raise InvalidLog(f"{int(bad.sum())} {name} value(s) outside {where}, e.g. {first!r}")
