"""Request cost limits: the work one rank may ask of VW, checked before VW sees it.

The limits are settings (``XSELL_MAX_*``, docs/security.md "Limits"); the cost is
counted by ``policies.deciding.features.example_cost`` under the served model's VW
arguments, so a change of policy (``-q ::`` or ``--cubic``) changes what one
request may send.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.base import Action, Features
from policies.deciding.features import FeatureLimits, example_cost
from service.resources import Resources
from service.settings import Settings

__all__ = ["check_cost", "feature_limits"]


def feature_limits(settings: Settings) -> FeatureLimits:
    """Return the cost limits `settings` describe (the learner applies the same ones)."""
    return FeatureLimits(
        max_context_features=settings.max_context_features,
        max_action_features=settings.max_action_features,
        max_features_x_actions=settings.max_features_x_actions,
        max_interaction_pairs=settings.max_interaction_pairs,
    )


def check_cost(
    res: Resources,
    context: Features,
    actions: Sequence[Action],
    *,
    context_field: str = "context",
    actions_field: str = "actions",
) -> None:
    """Raise TooCostly if ranking `actions` in `context` would cost more than the limits allow."""
    _, policy = res.served.current()
    cost = example_cost(context, actions, policy.vw_args)
    feature_limits(res.settings).check(cost, context_field=context_field, actions_field=actions_field)
