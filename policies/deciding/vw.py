"""The Vowpal Wabbit contextual-bandit policy (``--cb_explore_adf``).

This is the only module that imports Vowpal Wabbit. A VW workspace is not
thread-safe, so every call into it holds the policy's lock; serving workers only
ever call ``rank``, the learner alone calls ``learn``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Self

import numpy as np
import vowpalwabbit

from policies.base import (
    Action,
    Features,
    LoggedEvent,
    ModelCard,
    ModelFormatError,
    Ranking,
    as_ranking,
    mask_excluded,
)
from policies.deciding.features import action_line, cb_label, multiline_example, shared_line
from policies.deciding.vw_args import check_vw_args, policy_arg_list, regressor_arg_list
from policies.deciding.vw_header import check_model_header

__all__ = ["FORMAT_VERSION", "VWPolicy", "VWRegressor", "card_path", "check_vw_args", "file_sha256"]

FORMAT_VERSION = 1
_CB = vowpalwabbit.LabelType.CONTEXTUAL_BANDIT
_PARSED_LIMIT = 4096  # parsed action examples kept per policy


def card_path(model_path: Path) -> Path:
    """Return where the ModelCard for `model_path` lives."""
    return model_path.with_suffix(".json")


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class VWPolicy:
    """Rank candidates with VW's exploration distribution; learn one slot at a time.

    A multi-slot decision is learned as one contextual-bandit example per slot: the
    candidates still available at that slot, the chosen one labelled with its own
    reward and its conditional probability (the conditional-contextual-bandit
    reduction Personalizer's multi-slot API used).
    """

    kind = "vw"

    def __init__(self, vw_args: str, *, model_path: Path | None = None, events_learned: int = 0):
        self.vw_args = check_vw_args(vw_args)
        # VW gets only xsell's tokens: the allowlisted options, rebuilt, and the file to load.
        arg_list = [*policy_arg_list(vw_args, leave_out={"quiet"}), "--quiet"]
        if model_path is not None:
            # VW obeys the options in a model's header too: they must pass the allowlist first.
            check_model_header(model_path)
            # The header carries the random state; repeating the seed would contradict it.
            arg_list = [*policy_arg_list(vw_args, leave_out={"quiet", "random_seed"}), "--quiet"]
            arg_list += ["--initial_regressor", str(model_path)]
        try:
            self._workspace = vowpalwabbit.Workspace(arg_list=arg_list)
        except Exception as error:  # VW raises bare RuntimeErrors for bad args and files
            message = str(error).replace(str(model_path), model_path.name) if model_path else str(error)
            raise ModelFormatError(f"Vowpal Wabbit refused the model: {message}") from error
        self.events_learned = events_learned
        self._lock = threading.Lock()
        self._parsed: dict[str, vowpalwabbit.Example] = {}

    def rank(self, context: Features, actions: Sequence[Action], excluded: frozenset[str]) -> Ranking:
        """Return VW's exploration distribution over the candidates not excluded."""
        ids = [a.id for a in actions]
        eligible = mask_excluded(ids, excluded)
        if not eligible.any():
            raise ValueError("every candidate is excluded")
        offered = [a for a, ok in zip(actions, eligible, strict=True) if ok]
        with self._lock:
            shared = vowpalwabbit.Example(self._workspace, shared_line(context), labelType=_CB)
            pmf = self._workspace.predict([shared, *(self._parsed_action(a) for a in offered)])
        return as_ranking(ids, eligible, np.asarray(pmf, dtype=np.float64))

    def _parsed_action(self, action: Action) -> vowpalwabbit.Example:
        """Return the action's example, parsed once: VW's text parsing was most of a predict.

        Predicting does not change a parsed example, so the same one serves every
        request that offers this action (tests/policies/deciding/test_vw.py checks the
        distributions equal those from text).
        """
        text = action_line(action)
        example = self._parsed.get(text)
        if example is None:
            if len(self._parsed) >= _PARSED_LIMIT:
                self._parsed.clear()
            example = vowpalwabbit.Example(self._workspace, text, labelType=_CB)
            self._parsed[text] = example
        return example

    def learn(self, event: LoggedEvent, rewards: Sequence[float]) -> None:
        """Learn one closed event: one CB example per slot, each with its own reward.

        Each slot's example holds the candidates that slot could show (not excluded,
        not excluded from the slot, not shown above it): the set its logged
        probability was conditional on.
        """
        available = [a for a in event.actions if a.id not in event.excluded]
        with self._lock:
            for slot, (choice, reward) in enumerate(zip(event.choices, rewards, strict=True)):
                banned = event.slot_banned(slot)
                offered = [a for a in available if a.id not in banned] if banned else available
                index = next(i for i, a in enumerate(offered) if a.id == choice.action_id)
                label = cb_label(reward, choice.probability)
                self._workspace.learn(multiline_example(event.context, offered, {index: label}))
                available = [a for a in available if a.id != choice.action_id]
        self.events_learned += 1

    def save(self, path: Path) -> ModelCard:
        """Write the model and its card atomically (temp file, fsync, rename)."""
        temporary = path.with_name(f".{path.name}.tmp")
        with self._lock:
            self._workspace.save(str(temporary))
        _fsync(temporary)
        os.replace(temporary, path)
        card = ModelCard(self.kind, self.vw_args, FORMAT_VERSION, file_sha256(path), self.events_learned)
        card_temporary = card_path(path).with_name(f".{path.name}.json.tmp")
        card_temporary.write_text(json.dumps(asdict(card), indent=2))
        _fsync(card_temporary)
        os.replace(card_temporary, card_path(path))
        return card

    @classmethod
    def load(cls, path: Path) -> Self:
        """Load a saved model after checking its card and checksum."""
        card = read_card(path)
        if card.kind != cls.kind or card.format_version != FORMAT_VERSION:
            raise ModelFormatError(
                f"{path.name}: unsupported model kind/format {card.kind}/{card.format_version}"
            )
        try:
            actual = file_sha256(path)
        except OSError as error:
            raise ModelFormatError(f"{path.name}: model file unreadable ({error.strerror})") from None
        if actual != card.sha256:
            raise ModelFormatError(f"{path.name}: checksum does not match its card; refusing to load")
        return cls(card.vw_args, model_path=path, events_learned=card.events_learned)


class VWRegressor:
    """A VW regression from feature strings to rewards (a DM reward model).

    Features come from ``policies.deciding.features.regression_features``; every namespace
    pair is crossed so the reward of an offer can depend on the context. Squared
    loss by default; ``logistic=True`` (with LOGISTIC_ARGS) predicts a probability
    for rewards in [0, 1], a fractional reward r learned as a positive example of
    importance r and a negative one of importance 1 - r (VW's logistic labels are ±1).
    """

    DEFAULT_ARGS = "-q :: --loss_function squared"
    LOGISTIC_ARGS = "-q :: --loss_function logistic --link logistic"

    def __init__(self, vw_args: str = DEFAULT_ARGS, *, logistic: bool = False):
        tokens = regressor_arg_list(vw_args)  # allowlisted, rebuilt; raises ValueError
        self._logistic = logistic
        self._workspace = vowpalwabbit.Workspace(arg_list=[*tokens, "--quiet"])

    def learn(self, features: str, reward: float) -> None:
        """Take one step towards predicting `reward` from `features`."""
        if not self._logistic:
            self._workspace.learn(f"{reward:.9g} {features}")
            return
        if not 0 <= reward <= 1:
            raise ValueError(f"a logistic reward model needs rewards in [0, 1], got {reward!r}")
        for label, weight in ((1, reward), (-1, 1 - reward)):
            if weight > 0:
                self._workspace.learn(f"{label} {weight:.9g} {features}")

    def predict(self, features: str) -> float:
        """Return the predicted reward."""
        return float(self._workspace.predict(features))

    def close(self) -> None:
        """Free the VW workspace."""
        self._workspace.finish()


def read_card(path: Path) -> ModelCard:
    """Read the ModelCard beside a model file; raise ModelFormatError if unreadable."""
    try:
        data = json.loads(card_path(path).read_text())
        return ModelCard(**data)
    except OSError as error:
        raise ModelFormatError(f"{path.name}: model card missing or unreadable ({error.strerror})") from error
    except (ValueError, TypeError) as error:
        raise ModelFormatError(f"{path.name}: model card unreadable ({error})") from error


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
