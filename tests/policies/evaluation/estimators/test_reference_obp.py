"""Our estimators agree with the Open Bandit Pipeline's definitions on identical inputs.

obp is installed with the dev extras only for this check; nothing in the product
imports it.
"""

from __future__ import annotations

import numpy as np
import pytest
from obp.ope import (
    DirectMethod as ObpDM,
)
from obp.ope import (
    DoublyRobust as ObpDR,
)
from obp.ope import (
    InverseProbabilityWeighting as ObpIPS,
)
from obp.ope import (
    SelfNormalizedDoublyRobust as ObpSNDR,
)
from obp.ope import (
    SelfNormalizedInverseProbabilityWeighting as ObpSNIPS,
)
from obp.ope import (
    SlateRewardInteractionIPS as ObpRIPS,
)

from policies.evaluation.estimators import (
    DirectMethod,
    DoublyRobust,
    EvalBatch,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedIPS,
)

PAIRS = [
    (InverseProbabilityWeighting(), ObpIPS()),
    (SelfNormalizedIPS(), ObpSNIPS()),
    (DirectMethod(), ObpDM()),
    (DoublyRobust(), ObpDR()),
    (SelfNormalizedDoublyRobust(), ObpSNDR()),
]


def bandit_feedback(seed: int, n: int = 2000, n_actions: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logging = rng.dirichlet(np.ones(n_actions), size=n)
    action = np.array([rng.choice(n_actions, p=p) for p in logging])
    return {
        "action": action,
        "reward": rng.binomial(1, 0.2 + 0.1 * (action % 3), n).astype(float),
        "pscore": logging[np.arange(n), action],
        "action_dist": rng.dirichlet(np.full(n_actions, 0.3), size=n),
        "q_hat": rng.uniform(0, 1, size=(n, n_actions)),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[p[0].name for p in PAIRS])
def test_single_slot_estimates_match_obp(seed, ours, theirs) -> None:
    data = bandit_feedback(seed)
    n = len(data["action"])
    expected = theirs.estimate_policy_value(
        reward=data["reward"],
        action=data["action"],
        pscore=data["pscore"],
        action_dist=data["action_dist"][:, :, None],
        position=np.zeros(n, dtype=int),
        estimated_rewards_by_reg_model=data["q_hat"][:, :, None],
    )
    batch = EvalBatch.from_dense(
        data["action"], data["reward"], data["pscore"], data["action_dist"], data["q_hat"]
    )
    assert ours.estimate(batch).value == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_cascade_ips_matches_obp_reward_interaction_ips(seed) -> None:
    rng = np.random.default_rng(seed)
    n, slots = 500, 3
    filled = rng.integers(1, slots + 1, size=n)
    mask = np.arange(slots)[None, :] < filled[:, None]
    p_log = np.where(mask, rng.uniform(0.05, 1.0, (n, slots)), 1.0)
    p_target = rng.uniform(0.0, 1.0, (n, slots)) * mask
    reward = rng.binomial(1, 0.3, (n, slots)) * mask.astype(float)

    rows, positions = np.nonzero(mask)  # obp's long layout: one row per filled slot
    expected = ObpRIPS(len_list=slots).estimate_policy_value(
        slate_id=rows,
        reward=reward[rows, positions],
        position=positions,
        pscore_cascade=np.cumprod(p_log, axis=1)[rows, positions],
        evaluation_policy_pscore_cascade=np.cumprod(p_target, axis=1)[rows, positions],
    )
    ours = InverseProbabilityWeighting().estimate(EvalBatch(reward, p_log, p_target, mask)).value
    assert ours == pytest.approx(expected, rel=1e-12)
