"""``Criterion`` and ``CriterionStatus``: what a method checked, and whether it held.

Shared by :func:`pdesolve.fit` and :func:`pdesolve.recover`, whose methods run a budget (training
steps, iterations, restarts) and may or may not test a criterion. A result is a success only when
a criterion was stated, checked and met; a method that ran its budget without a criterion says
``NOT_CHECKED``, never "converged".

>>> CriterionStatus.NOT_CHECKED.success, CriterionStatus.MET.success
(False, True)
>>> c = Criterion("test_error", target=0.01, value=0.55)
>>> c.met, str(c)
(False, 'test_error = 0.55 <= 0.01: not met')
>>> CriterionStatus("not_met").message
'a criterion was checked and does not hold at the end'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Criterion", "CriterionStatus"]


@dataclass(frozen=True)
class Criterion:
    """One checked criterion ``value <= target`` on the quantity ``name`` (its final value)."""

    name: str
    target: float
    value: float

    @property
    def met(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.target

    def __str__(self) -> str:
        verdict = "met" if self.met else "not met"
        return f"{self.name} = {self.value:.3g} <= {self.target:g}: {verdict}"


class CriterionStatus(enum.StrEnum):
    """The outcome of a method's criterion (the string values are what ``result.json`` holds)."""

    MET = "met"
    NOT_MET = "not_met"
    NOT_CHECKED = "not_checked"
    NONFINITE = "nonfinite"

    @property
    def success(self) -> bool:
        """True only for ``MET``: a stated criterion was checked and holds."""
        return self is CriterionStatus.MET

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @classmethod
    def of(cls, criteria: Iterable[Criterion]) -> CriterionStatus:
        """``MET`` when every criterion holds, ``NOT_MET`` when one does not, ``NOT_CHECKED`` for
        none; ``NONFINITE`` when a checked value is NaN or Inf."""
        criteria = list(criteria)
        if not criteria:
            return cls.NOT_CHECKED
        if any(not math.isfinite(c.value) for c in criteria):
            return cls.NONFINITE
        return cls.MET if all(c.met for c in criteria) else cls.NOT_MET


_MESSAGES = {
    CriterionStatus.MET: "a criterion was stated, checked and holds",
    CriterionStatus.NOT_MET: "a criterion was checked and does not hold at the end",
    CriterionStatus.NOT_CHECKED: "no criterion was tested: the method ran its fixed budget",
    CriterionStatus.NONFINITE: "NaN or Inf values appeared",
}
