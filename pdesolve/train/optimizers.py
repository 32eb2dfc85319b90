"""Optimizer factory for pdesolve training loops: ``make_optimizer(name, params_or_model, ...)``.

Each optimizer wants a different call in the training loop; :func:`take_step` hides that, given a
function returning ``(predictions, loss)`` for the current batch:

* ``"sgd"``, ``"adam"``: ``zero_grad(); loss.backward(); opt.step()``;
* ``"lbfgs"``: ``opt.step(closure)``, the closure zeroes the gradients, back-propagates and returns
  the loss (it is called several times per step by the line search);
* ``"curveball"``: ``opt.step(closure)`` with a closure returning ``(predictions, loss)`` and no
  ``backward()``; the optimizer must know the model (pass the ``nn.Module`` as
  ``params_or_model``, or ``model=...``). See :class:`pdesolve.nn.curveball.CurveBall`.

Example
-------
>>> import torch
>>> from pdesolve.train.optimizers import make_optimizer, take_step
>>> _ = torch.manual_seed(0)
>>> net = torch.nn.Linear(2, 1).double()
>>> x = torch.randn(16, 2, dtype=torch.float64)
>>> y = x.sum(dim=1, keepdim=True)
>>> def predict_and_loss():
...     out = net(x)
...     return out, torch.mean((out - y) ** 2)
>>> for name in ("sgd", "adam", "lbfgs", "curveball"):
...     opt = make_optimizer(name, net)
...     loss = take_step(opt, predict_and_loss)
>>> sorted(OPTIMIZERS)
['adam', 'curveball', 'lbfgs', 'sgd']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from pdesolve.nn.curveball import CurveBall

__all__ = ["OPTIMIZERS", "make_optimizer", "take_step"]


def _sgd(params: Any, model: nn.Module | None, **options: Any) -> torch.optim.Optimizer:
    options = {"lr": 1e-2, "momentum": 0.9, **options}
    return torch.optim.SGD(params, **options)


def _adam(params: Any, model: nn.Module | None, **options: Any) -> torch.optim.Optimizer:
    options = {"lr": 1e-3, **options}
    return torch.optim.Adam(params, **options)


def _lbfgs(params: Any, model: nn.Module | None, **options: Any) -> torch.optim.Optimizer:
    options = {"lr": 1.0, "max_iter": 20, "history_size": 50, "line_search_fn": "strong_wolfe",
               **options}
    return torch.optim.LBFGS(params, **options)


def _curveball(params: Any, model: nn.Module | None, **options: Any) -> torch.optim.Optimizer:
    if model is None:
        raise ValueError("make_optimizer('curveball', ...) needs the model: pass the nn.Module "
                         "itself or model=...")
    return CurveBall(params, model=model, **options)


#: name -> factory(params, model, **options)
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "lbfgs": _lbfgs,
    "curveball": _curveball,
}


def make_optimizer(
    name: str, params_or_model: nn.Module | Iterable[Any], **options: Any
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` with ``options`` (as in ``configs/optimizer/<name>.yaml``).

    ``params_or_model`` is an ``nn.Module`` (all its parameters) or parameters / parameter groups;
    ``model=`` may be given in ``options`` for CurveBall when parameters are passed.

    >>> import torch
    >>> make_optimizer("adam", torch.nn.Linear(2, 2), lr=0.1).defaults["lr"]
    0.1
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(OPTIMIZERS)}")
    options = dict(options)
    options.pop("name", None)
    model = options.pop("model", None)
    if isinstance(params_or_model, nn.Module):
        model = params_or_model if model is None else model
        params: Any = params_or_model.parameters()
    else:
        params = params_or_model
    return OPTIMIZERS[key](params, model, **options)


def take_step(
    optimizer: torch.optim.Optimizer, predict_and_loss: Callable[[], tuple[Tensor, Tensor]]
) -> float:
    """One optimisation step with any optimizer from :func:`make_optimizer`; returns the loss.

    ``predict_and_loss()`` evaluates the model on the current batch and returns
    ``(predictions, loss)``; the loss must be computed from those predictions.
    """
    if isinstance(optimizer, CurveBall):
        return float(optimizer.step(predict_and_loss))
    if isinstance(optimizer, torch.optim.LBFGS):
        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = predict_and_loss()[1]
            loss.backward()
            return loss

        return float(torch.as_tensor(optimizer.step(closure)).detach())
    optimizer.zero_grad()
    loss = predict_and_loss()[1]
    if not torch.isfinite(loss.detach()):
        raise FloatingPointError(f"non-finite loss ({float(loss.detach())}); no step taken")
    loss.backward()
    optimizer.step()
    return float(loss.detach())
