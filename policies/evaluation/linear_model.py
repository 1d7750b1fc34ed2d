"""A regularised linear reward model in numpy: logistic for rewards in [0, 1], squared otherwise.

The DM/DR reward model predicts, for every (context, offer, slot), the reward the
offer would earn. This one reads the same VW text features the VW models read
(``policies.deciding.features``), splits them into a *context side* (context and slot) and
an *action side* (the offer's id and features), and fits one weight per feature and
per (context feature, action feature) pair seen in training: the pairs are what
let the reward of an offer depend on the shopper. The fit is a full-batch L-BFGS
on the penalised loss, so it converges instead of depending on the order of the
log, and the L2 penalty keeps rare features (the most frequent case in
click logs) near zero instead of fitting noise.

Measured against VW's online regressions on the Open Bandit Dataset and the
synthetic problem in docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["LinearRewardModel", "parse_tokens"]

Loss = Literal["logistic", "squared"]
_Parsed = tuple[list[tuple[str, float]], list[tuple[str, float]]]
_Encoded = tuple[np.ndarray, np.ndarray]
# L2 penalties tried on the summed loss; measured in docs/evaluation.md
PENALTIES = (0.1, 1.0, 10.0, 100.0, 1000.0)
_INNER_FOLDS = 3
_LOOKUP_LIMIT = 1 << 22  # pair keys (vocabulary squared) below which a lookup table is built
MAX_PAIRED = 12  # categorical context features paired with each other (66 pairs at most)
_MAX_ITER = 300
_HISTORY = 10


def parse_tokens(text: str) -> list[tuple[str, float]]:
    """Return the (feature key, value) pairs of VW text namespaces.

    ``policies.deciding.features.escape`` keeps ``|``, ``:`` and whitespace out of names and
    string values, so splitting on them is exact.
    """
    tokens: list[tuple[str, float]] = []
    for segment in text.split("|")[1:]:
        words = segment.split()
        if not words:
            continue
        namespace = words[0]
        for word in words[1:]:
            name, colon, value = word.rpartition(":")
            if colon:
                tokens.append((f"{namespace}^{name}", float(value)))
            else:
                tokens.append((f"{namespace}^{word}", 1.0))
    return tokens


@dataclass
class LinearRewardModel:
    """Weights for bias, every feature, and every (context, action) feature pair seen in training.

    ``l2`` is the penalty on the summed loss (sklearn's ``C = 1 / l2``), None to
    choose it from PENALTIES by a split of the training data; the bias is not
    penalised. Logistic targets may be fractions (a soft label): the loss is the
    cross-entropy, minimised by predicting the expected reward.
    """

    loss: Loss = "logistic"
    l2: float | None = None
    context_pairs: bool = True
    chosen_l2: float = field(default=0.0, init=False)
    _vocab: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _pairs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), init=False, repr=False)
    _lookup: np.ndarray | None = field(default=None, init=False, repr=False)
    _weights: np.ndarray = field(default_factory=lambda: np.zeros(1), init=False, repr=False)
    _encoded: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    def fit(self, examples: Sequence[tuple[str, str]], targets: Sequence[float]) -> None:
        """Fit on (context-side text, action-side text) pairs and their rewards.

        Without a fixed ``l2``, the penalty is the one of PENALTIES that predicts
        best on half of `examples` when fitted on the other half: click logs range
        from thousands of clicks on a few features (little penalty wanted) to a few
        dozen clicks on thousands (only the base rate is learnable).
        """
        parsed = [(self._context_tokens(c), parse_tokens(a)) for c, a in examples]
        y = np.asarray(targets, dtype=np.float64)
        if self.l2 is None:
            self.chosen_l2 = self._choose_penalty(parsed, y)
        else:
            self.chosen_l2 = self.l2
        self._fit_parsed(parsed, y, self.chosen_l2)

    def _choose_penalty(self, parsed: list[_Parsed], y: np.ndarray) -> float:
        """Pick the largest penalty within one standard error of the best, by 3-fold validation.

        The one-standard-error rule (Hastie, Tibshirani & Friedman, 2009, 7.10) keeps
        a log with a few dozen clicks from choosing a penalty by luck.
        """
        fold_of = np.random.default_rng(len(y)).permutation(len(y)) % _INNER_FOLDS
        losses = np.zeros((len(PENALTIES), len(y)))
        for fold in range(_INNER_FOLDS):
            train, valid = fold_of != fold, fold_of == fold
            if not train.any() or not valid.any():
                return PENALTIES[len(PENALTIES) // 2]
            model = LinearRewardModel(self.loss, context_pairs=self.context_pairs)
            design = model._prepare([p for p, t in zip(parsed, train, strict=True) if t])
            valid_design = model._design(
                [(model._encode(c), model._encode(a)) for (c, a), v in zip(parsed, valid, strict=True) if v]
            )
            # from the strongest penalty down, each fit starting where the last ended
            for k in reversed(range(len(PENALTIES))):
                model._solve(design, y[train], PENALTIES[k])
                predicted = _link(valid_design.dot(model._weights), self.loss)
                losses[k, valid] = _losses(predicted, y[valid], self.loss)
        means = losses.mean(axis=1)
        best = int(np.argmin(means))
        standard_error = losses[best].std() / np.sqrt(len(y))
        return max(
            l2 for l2, mean in zip(PENALTIES, means, strict=True) if mean <= means[best] + standard_error
        )

    def _fit_parsed(self, parsed: list[_Parsed], y: np.ndarray, l2: float) -> None:
        self._solve(self._prepare(parsed), y, l2)

    def _solve(self, design: _Sparse, y: np.ndarray, l2: float) -> None:
        start = self._weights if len(self._weights) == design.n_columns else np.zeros(design.n_columns)
        self._weights = _lbfgs(lambda w: _objective(w, design, y, self.loss, l2), start)

    def _prepare(self, parsed: list[_Parsed]) -> _Sparse:
        """Learn the columns from `parsed` and return its design matrix."""
        self._vocab.clear()
        for context, action in parsed:
            for key, _ in (*context, *action):
                self._vocab.setdefault(key, len(self._vocab) + 1)  # 0 is the bias
        self._encoded.clear()
        rows = [(self._encode(c), self._encode(a)) for c, a in parsed]
        size = len(self._vocab) + 1
        pair_keys = [np.add.outer(c[0] * size, a[0]).ravel() for c, a in rows]
        self._pairs = np.unique(np.concatenate(pair_keys)) if pair_keys else np.zeros(0, np.int64)
        self._lookup = None
        if size * size <= _LOOKUP_LIMIT:  # a table from pair key to column beats a binary search
            self._lookup = np.full(size * size, -1, dtype=np.int64)
            self._lookup[self._pairs] = np.arange(len(self._pairs))
        self._weights = np.zeros(0)
        return self._design(rows)

    def _pair_columns(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return each pair key's index among the training pairs, and whether training saw it."""
        if self._lookup is not None:
            position = self._lookup[keys]
            return np.maximum(position, 0), position >= 0
        if not len(self._pairs):
            return np.zeros(keys.shape, dtype=np.int64), np.zeros(keys.shape, dtype=bool)
        position = np.minimum(np.searchsorted(self._pairs, keys), len(self._pairs) - 1)
        return position, self._pairs[position] == keys

    def _design(self, rows: list[tuple[_Encoded, _Encoded]]) -> _Sparse:
        size = len(self._vocab) + 1
        row_ids, columns, values = [], [], []
        for index, ((c_ids, c_vals), (a_ids, a_vals)) in enumerate(rows):
            position, known = self._pair_columns(np.add.outer(c_ids * size, a_ids).ravel())
            cols = np.concatenate(([0], c_ids, a_ids, size + position[known]))
            vals = np.concatenate(([1.0], c_vals, a_vals, np.outer(c_vals, a_vals).ravel()[known]))
            row_ids.append(np.full(len(cols), index))
            columns.append(cols)
            values.append(vals)
        lengths = [len(c) for c in columns]
        return _Sparse(
            np.concatenate(row_ids),
            np.cumsum([0, *lengths[:-1]]),
            np.concatenate(columns),
            np.concatenate(values),
            len(rows),
            size + len(self._pairs),
        )

    def predict(self, context_text: str, action_texts: Sequence[str]) -> np.ndarray:
        """Return the predicted reward of each action for one context side."""
        size = len(self._vocab) + 1
        c_ids, c_vals = self._encode(self._context_tokens(context_text))
        encoded = [self._encoded_action(text) for text in action_texts]
        width = max((len(ids) for ids, _ in encoded), default=0)
        a_ids = np.zeros((len(encoded), width), dtype=np.int64)
        a_vals = np.zeros((len(encoded), width))
        for row, (ids, vals) in enumerate(encoded):
            a_ids[row, : len(ids)], a_vals[row, : len(vals)] = ids, vals
        w = self._weights
        z = w[0] + (w[c_ids] * c_vals).sum() + (w[a_ids] * a_vals).sum(axis=1)
        if len(self._pairs) and len(c_ids) and width:
            position, known = self._pair_columns(c_ids[:, None, None] * size + a_ids[None, :, :])
            pair_weight = np.where(known, w[size + position], 0.0)
            z = z + (pair_weight * c_vals[:, None, None] * a_vals[None, :, :]).sum(axis=(0, 2))
        return _link(z, self.loss)

    def _context_tokens(self, text: str) -> list[tuple[str, float]]:
        """Return the context side's features, and their pairs when ``context_pairs`` is set.

        Paired with an offer's features, a pair of context features lets the best
        offer depend on a combination (segment and device), which pairs of single
        features cannot express. Only categorical features (``name=value``) are
        paired, the first MAX_PAIRED of them, so the work per example stays bounded
        (numbers such as affinities enter singly).
        """
        tokens = parse_tokens(text)
        if not self.context_pairs:
            return tokens
        head = [(k, v) for k, v in tokens if "=" in k][:MAX_PAIRED]
        pairs = [(f"{k1}&{k2}", v1 * v2) for i, (k1, v1) in enumerate(head) for k2, v2 in head[i + 1 :]]
        return tokens + pairs

    def _encoded_action(self, text: str) -> _Encoded:
        found = self._encoded.get(text)
        if found is None:
            found = self._encoded[text] = self._encode(parse_tokens(text))
        return found

    def _encode(self, tokens: list[tuple[str, float]]) -> _Encoded:
        """Map known features to columns; features never seen in training carry no weight."""
        known = [(self._vocab[k], v) for k, v in tokens if k in self._vocab and v != 0.0]
        ids = np.array([i for i, _ in known], dtype=np.int64)
        return ids, np.array([v for _, v in known], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Sparse:
    """A sparse matrix, rows in order and none empty (each holds the bias)."""

    rows: np.ndarray
    starts: np.ndarray  # where each row's entries begin
    columns: np.ndarray
    values: np.ndarray
    n_rows: int
    n_columns: int

    def dot(self, w: np.ndarray) -> np.ndarray:
        return np.add.reduceat(self.values * w[self.columns], self.starts)

    def transpose_dot(self, g: np.ndarray) -> np.ndarray:
        return np.bincount(self.columns, self.values * g[self.rows], minlength=self.n_columns)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product without BLAS: OpenBLAS threads spin on short vectors and cost 3x the work."""
    return float(np.multiply(a, b).sum())


def _link(z: np.ndarray, loss: Loss) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z)) if loss == "logistic" else z


def _losses(predicted: np.ndarray, y: np.ndarray, loss: Loss) -> np.ndarray:
    if loss == "squared":
        return (predicted - y) ** 2
    p = np.clip(predicted, 1e-12, 1 - 1e-12)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _objective(w: np.ndarray, x: _Sparse, y: np.ndarray, loss: Loss, l2: float) -> tuple[float, np.ndarray]:
    z = x.dot(w)
    if loss == "logistic":
        value = float((np.logaddexp(0.0, z) - y * z).sum())
        residual = 1.0 / (1.0 + np.exp(-z)) - y
    else:
        residual = z - y
        value = float(0.5 * (residual**2).sum())
    penalised = w.copy()
    penalised[0] = 0.0
    return value + 0.5 * l2 * _dot(penalised, penalised), x.transpose_dot(residual) + l2 * penalised


def _lbfgs(objective, start: np.ndarray) -> np.ndarray:
    """Minimise a smooth convex objective (Nocedal & Wright, algorithm 7.4, Armijo backtracking)."""
    w = start.copy()
    value, gradient = objective(w)
    s_list: list[np.ndarray] = []
    y_list: list[np.ndarray] = []
    for _ in range(_MAX_ITER):
        if np.abs(gradient).max() < 1e-6:
            break
        direction = -gradient
        alphas = []
        for s, y in zip(reversed(s_list), reversed(y_list), strict=True):
            alpha = _dot(s, direction) / _dot(y, s)
            alphas.append(alpha)
            direction = direction - alpha * y
        if s_list:
            direction *= _dot(s_list[-1], y_list[-1]) / _dot(y_list[-1], y_list[-1])
        else:
            direction /= max(1.0, np.sqrt(_dot(gradient, gradient)))
        for (s, y), alpha in zip(zip(s_list, y_list, strict=True), reversed(alphas), strict=True):
            beta = _dot(y, direction) / _dot(y, s)
            direction = direction + (alpha - beta) * s
        step, slope = 1.0, _dot(gradient, direction)
        while True:
            candidate = w + step * direction
            new_value, new_gradient = objective(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s, y = candidate - w, new_gradient - gradient
        if _dot(y, s) > 1e-12:
            s_list.append(s)
            y_list.append(y)
            if len(s_list) > _HISTORY:
                s_list.pop(0)
                y_list.pop(0)
        converged = abs(value - new_value) <= 1e-9 * max(1.0, abs(value))
        w, value, gradient = candidate, new_value, new_gradient
        if converged:
            break
    return w
