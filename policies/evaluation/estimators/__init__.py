"""Off-policy estimators: judge a policy from a log another policy wrote.

One module per method, each a frozen dataclass with one verb,
``estimate(batch) -> Estimate``. Inputs are plain numpy arrays gathered in an
``EvalBatch``; nothing here knows about SQLite, HTTP or Vowpal Wabbit.
"""

from policies.evaluation.estimators.batch import EvalBatch, InvalidLog
from policies.evaluation.estimators.dm import DirectMethod
from policies.evaluation.estimators.dr import DoublyRobust
from policies.evaluation.estimators.intervals import Bootstrap, Estimate, Normal, effective_sample_size
from policies.evaluation.estimators.ips import InverseProbabilityWeighting
from policies.evaluation.estimators.sndr import SelfNormalizedDoublyRobust
from policies.evaluation.estimators.snips import SelfNormalizedIPS

__all__ = [
    "ALL_ESTIMATORS",
    "Bootstrap",
    "DirectMethod",
    "DoublyRobust",
    "Estimate",
    "EvalBatch",
    "InvalidLog",
    "InverseProbabilityWeighting",
    "Normal",
    "SelfNormalizedDoublyRobust",
    "SelfNormalizedIPS",
    "effective_sample_size",
]

ALL_ESTIMATORS = (
    InverseProbabilityWeighting(),
    SelfNormalizedIPS(),
    DirectMethod(),
    DoublyRobust(),
    SelfNormalizedDoublyRobust(),
)
