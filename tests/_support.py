"""Helpers shared by the tests."""

import numpy as np


def measured_orders(errors, sizes) -> np.ndarray:
    """Observed convergence orders between successive refinements (sizes are mesh widths)."""
    e, h = np.asarray(errors, dtype=float), np.asarray(sizes, dtype=float)
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])
