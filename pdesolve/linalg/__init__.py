"""Linear systems and operator conversions."""

from pdesolve.linalg.system import InvalidSystemError, LinearSystem

__all__ = ["InvalidSystemError", "LinearSystem"]
