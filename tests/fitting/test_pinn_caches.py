"""What the PINN trainer caches on a fixed point set (hard-constraint factors, the boundary lift,
Fourier features, affine residual coefficients) gives the uncached residual and gradients, and is
rebuilt when the points change: in place, by refinement, after a resume."""

import pytest
import torch

import pdesolve
from pdesolve.train.pinn import PINNTrainer
from pdesolve.train.pinn.residuals import SpaceTimeResidual, affine_coefficients

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"model": {"name": "mlp", "width": 6, "depth": 2, "activation": "tanh"}, "batch": 32,
        "sampling": "uniform", "log_every": 1, "progress": False, "test_grid": (5, 3),
        "monitor_points": 20, "seed": 3}  # fmt: skip
REF = {"n": 64, "dt": 1e-2, "estimate": False}
CASES = {
    "burgers": ({}, {"reference": REF}),  # hard initial and boundary conditions
    "allen_cahn": ({}, {"reference": REF, "fourier_modes": 2}),  # Fourier features
    "heat": ({"dim": 2}, {"constraint": "hard"}),  # hard initial condition + Coons-patch lift
}


def trainer_for(name: str, steps: int = 2, **extra) -> PINNTrainer:
    params, opts = CASES[name]
    return PINNTrainer(pdesolve.get_problem(name, **params), steps=steps, **TINY, **opts,
                       **extra)  # fmt: skip


def uncached(trainer: PINNTrainer, x: torch.Tensor) -> torch.Tensor:
    """The residual by nested autograd through the whole network and its constraints, at a
    fresh copy of the points (nothing cached applies)."""
    y = x.detach().clone().requires_grad_(True)
    return trainer.problem.pde_residual(trainer.model, y).reshape(-1)


def gradients(trainer: PINNTrainer, r: torch.Tensor) -> torch.Tensor:
    params = list(trainer.model.parameters())
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(r.square().mean(), params,
                                                                retain_graph=True)])


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = float(b.detach().abs().max())
    torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=1e-12 * max(scale, 1.0))


@pytest.mark.parametrize("name", sorted(CASES))
def test_cached_residual_and_gradients_equal_the_uncached_ones(name):
    trainer = trainer_for(name)
    assert trainer.derivatives == "forward"
    xi = trainer._batch()[0]
    slow = uncached(trainer, xi)
    for _ in range(2):  # the second call uses what the first one cached
        fast = trainer.residual(xi)
        assert_same(fast, slow)
        assert_same(gradients(trainer, fast), gradients(trainer, slow))
    assert trainer._space_time_residual.affine is (name == "heat")


def test_affine_coefficients_are_those_of_the_heat_equation():
    problem = pdesolve.get_problem("heat", dim=2)
    x = problem.domain.sample_interior(16, torch.Generator().manual_seed(0)).double()
    r0, a, b, c = affine_coefficients(problem, x)
    k = problem.coefficient(x[:, :-1]).reshape(-1)
    # u_t - k Δu - ∇k·∇u - f: c = (-k, -k, 0), b_t = 1, a = 0, r0 = -f
    torch.testing.assert_close(c, torch.stack([-k, -k, 0 * k], 1), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(b[:, 2], torch.ones_like(k), rtol=0, atol=0)
    assert bool((a == 0).all())
    torch.testing.assert_close(r0, -problem.source(x).reshape(-1), rtol=1e-14, atol=1e-13)
    assert not SpaceTimeResidual(pdesolve.get_problem("burgers"))._is_affine(x[:, 1:])


@pytest.mark.parametrize("name", ["burgers", "heat"])
def test_points_changed_in_place_are_not_served_from_the_cache(name):
    trainer = trainer_for(name)
    xi = trainer._batch()[0].clone()
    trainer.residual(xi)  # caches the constraint factors (and coefficients) at xi
    with torch.no_grad():
        xi.mul_(0.5)  # still inside the domain
    assert_same(trainer.residual(xi), uncached(trainer, xi))


@pytest.mark.parametrize("name", ["burgers", "heat"])
def test_refinement_changes_the_batch_and_the_caches_follow(name):
    trainer = trainer_for(name, rar={"every": 2, "candidates": 50, "points": 5})
    before = trainer._batch()[0]
    assert trainer._batch()[0] is before  # a fixed set: the same tensor every step
    trainer.config["steps"] = 5
    trainer.fit()  # refines at steps 2 and 4
    after = trainer._batch()[0]
    assert after.shape[0] == before.shape[0] + 10
    assert trainer._batch()[0] is after  # the joined set is kept while nothing changes
    assert_same(trainer.residual(after), uncached(trainer, after))
    trainer.refine()
    newer = trainer._batch()[0]
    assert newer.shape[0] == after.shape[0] + 5
    assert_same(trainer.residual(newer), uncached(trainer, newer))


@pytest.mark.slow
def test_resumed_refined_run_equals_the_uninterrupted_one(tmp_path):
    extra = {"steps": 5, "bfgs_steps": 2, "rar": {"every": 2, "candidates": 50, "points": 5}}
    full = trainer_for("heat", **extra)
    h_full = full.fit()
    first = trainer_for("heat", **extra, output_dir=tmp_path / "a")
    first.config.update(steps=3, bfgs_steps=0)  # killed after step 3, one refinement in
    first.fit()
    resumed = trainer_for("heat", **extra, resume=tmp_path / "a" / "checkpoint.pt")
    assert resumed.step == 3
    h_res = resumed.fit()
    assert h_res["train_loss"][1:] == h_full["train_loss"][1:]
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
