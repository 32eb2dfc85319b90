"""LISTA: learned ISTA (Gregor & LeCun), the trained baseline of FIRENET's Table 1.

Layer ``k``: ``x_{k+1} = soft_threshold(x_k + W_k (y − A x_k), θ_k)`` with a free matrix
``W_k`` (``N × m``) and a threshold ``θ_k >= 0`` per layer; ``A`` is fixed. Parametrised in units
of ``s = ||A||`` (``W_k = V_k / s``, ``θ_k = relu(t_k) / s``, ``V_k`` starting at ``A^T / s``,
``t_k`` at ``theta0``) so that training behaves the same whatever the scale of ``A`` (the
official code's raw parametrisation does not: its Table-1 matrices have ``||A|| ~ 10^K``).

>>> import torch
>>> net = LISTA(torch.eye(3, dtype=torch.float64), layers=2)
>>> net(torch.ones(4, 3, dtype=torch.float64)).shape
torch.Size([4, 3])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pdesolve.linalg.proximal import soft_threshold

__all__ = ["LISTA"]


class LISTA(nn.Module):
    """``layers`` unrolled learned-ISTA layers for a fixed real matrix ``A`` (``m × N``)."""

    def __init__(self, matrix: Tensor, layers: int = 10, theta0: float = 0.0) -> None:
        super().__init__()
        A = torch.as_tensor(matrix, dtype=torch.float64)
        self.register_buffer("A", A)
        self.scale = float(torch.linalg.matrix_norm(A, ord=2))
        self.V = nn.ParameterList(nn.Parameter(A.T.clone() / self.scale) for _ in range(layers))
        self.theta = nn.Parameter(torch.full((layers,), float(theta0), dtype=torch.float64))

    def forward(self, y: Tensor) -> Tensor:
        x = y.new_zeros((*y.shape[:-1], self.A.shape[1]))
        for k, V in enumerate(self.V):
            step = (y - x @ self.A.T) @ V.T / self.scale
            x = soft_threshold(x + step, torch.relu(self.theta[k]) / self.scale)
        return x
