"""Off-policy estimators: judge a policy from a log another policy wrote.

One module per method, each a frozen dataclass with one verb,
``estimate(batch) -> Estimate``. Inputs are plain numpy arrays gathered in an
``EvalBatch``; nothing here knows about SQLite, HTTP or Vowpal Wabbit.
"""

from policies.estimators.batch import EvalBatch, InvalidLog
from policies.estimators.dm import DirectMethod
from policies.estimators.dr import DoublyRobust
from policies.estimators.intervals import Bootstrap, Estimate, Normal, effective_sample_size
from policies.estimators.ips import InverseProbabilityWeighting
from policies.estimators.sndr import SelfNormalizedDoublyRobust
from policies.estimators.snips import SelfNormalizedIPS

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
