"""Physics-informed neural networks: training (:class:`PINNTrainer`), loading (:func:`load_pinn`).

``PINNTrainer(problem, ...).fit()`` trains ``u_θ`` so that the problem's ``pde_residual(u_θ, x)``
vanishes at collocation points. The boundary data are imposed by a penalty (``soft``:
``w_b mean (u_θ - g)²`` on boundary points) or exactly by the ansatz ``u_θ = D(x) N_θ(x)`` with the
domain's distance function ``D`` (``hard``; zero data). Time-dependent problems add the initial
condition (a penalty ``w_0 mean (u_θ(x, t0) - u0)²`` or the hard ansatz
``u_θ = u0(x) + (t - t0)/(t1 - t0) D(x) N_θ``), periodic axes by Fourier-feature inputs (hard), and
optionally causal weighting of the residual in time. Inverse runs add an observation misfit and
train the problem's unknown parameters with the network. Problems with
``pinn_loss = "rayleigh"`` (eigenvalue problems) are trained on the Rayleigh quotient
``∫|∇u|² / ∫u²`` plus ``(∫u² - 1)²`` instead.

Phases: ``steps`` updates with ``optimizer`` (adam, sgd or curveball, optional learning-rate
``schedule``; residual-based refinement ``rar`` and adaptive loss weights happen here), then
``lbfgs_steps`` L-BFGS steps and ``bfgs_steps`` full-memory (self-scaled) BFGS iterations on one
fixed batch. Every ``log_every`` updates the history gets the relative L2 error on a fixed test
set (against the exact solution, or the problem's reference solution) and the RMS PDE residual
on a fixed monitor set. Checkpoints hold weights, optimizer, scheduler, quasi-Newton and RNG
states, refinement points and loss weights, so a resumed run continues exactly as an
uninterrupted one, in every phase.

Modules: :mod:`~pdesolve.train.pinn.network` (the PINN wrapper, features, hard constraints),
:mod:`~pdesolve.train.pinn.residuals` (forward-mode residuals), :mod:`~pdesolve.train.pinn.data`
(collocation points, refinement, causal weights), :mod:`~pdesolve.train.pinn.losses`,
:mod:`~pdesolve.train.pinn.quasi_newton` (BFGS), :mod:`~pdesolve.train.pinn.inverse`,
:mod:`~pdesolve.train.pinn.trainer` (the loop), :mod:`~pdesolve.train.pinn.callbacks` (metrics,
plots, progress), :mod:`~pdesolve.train.pinn.model` (building and loading).

>>> import pdesolve
>>> from pdesolve.train.pinn import PINNTrainer
>>> problem = pdesolve.get_problem("poisson", dim=1, solution="sine")
>>> trainer = PINNTrainer(problem, model={"name": "mlp", "width": 16, "depth": 2},
...                       steps=300, batch=64, log_every=100, seed=0,
...                       optimizer={"name": "adam", "lr": 1e-2}, progress=False)
>>> history = trainer.fit()
>>> history["step"]
[0, 100, 200, 300]
>>> history["relative_l2"][-1] < 0.05
True
"""

from pdesolve.train.pinn.model import build_pinn, load_pinn
from pdesolve.train.pinn.network import PINN
from pdesolve.train.pinn.trainer import HISTORY_KEYS, PINNTrainer, TrainingDivergedError

__all__ = ["HISTORY_KEYS", "PINN", "PINNTrainer", "TrainingDivergedError", "build_pinn",
           "load_pinn"]
