"""What ``pdesolve.fit`` reports: its fields mean what they say, it claims success only for a
criterion it checked, and wrong input is refused before any training."""

import inspect

import numpy as np
import pytest
import yaml

import pdesolve
from pdesolve.cli import CONFIG_DIR
from pdesolve.fitting.pinn import PINNFit, unknown_points
from pdesolve.train.pinn import PINNTrainer

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = {"model": "mlp", "width": 8, "depth": 2, "activation": "tanh", "batch": 64,
        "log_every": 10, "progress": False, "test_points": 1000}  # fmt: skip


def test_pinn_far_from_the_solution_never_reports_success():
    """30 steps on 2D Poisson: the network is far from u (test error > 0.3). Without a criterion
    it says not_checked; with a target error it says not_met; the training is the same."""
    problem = pdesolve.get_problem("poisson", dim=2, n=16)
    plain = pdesolve.fit(problem, method="pinn", steps=30, **TINY)
    assert plain.test_error > 0.3
    assert plain.status is pdesolve.CriterionStatus.NOT_CHECKED and not plain.success
    assert plain.criteria == () and plain.steps == 30
    assert not hasattr(plain, "converged")
    targeted = pdesolve.fit(problem, method="pinn", steps=30, target_error=0.01, **TINY)
    assert targeted.test_error == plain.test_error  # a criterion does not change the training
    assert targeted.status.value == "not_met" and not targeted.success
    (criterion,) = targeted.criteria
    assert (criterion.name, criterion.target, criterion.value) == ("test_error", 0.01,
                                                                   plain.test_error)
    loose = pdesolve.fit(problem, method="pinn", steps=30, target_error=1.0, **TINY)
    assert loose.success and loose.criteria[0].value <= 1.0  # met: it was checked and holds


def test_fields_are_what_was_measured():
    problem = pdesolve.get_problem("poisson", dim=1, n=15, solution="sine")
    result = pdesolve.fit(problem, method="pinn", steps=25, **TINY)
    assert result.history_steps.tolist() == [0, 10, 20, 25]
    assert np.isnan(result.loss_history[0])  # no update yet at step 0
    assert result.final_loss == result.loss_history[-1]
    assert result.best_loss == np.nanmin(result.loss_history)
    trainer = PINNTrainer(problem, model={"name": "mlp", "width": 8, "depth": 2,
                                          "activation": "tanh"},
                          steps=25, **{k: TINY[k] for k in ("batch", "log_every", "progress",
                                                             "test_points")})  # fmt: skip
    history = trainer.fit()  # the same training by hand: the fit adds only reporting
    assert history["train_loss"][1:] == result.history["train_loss"][1:]
    assert result.test_error == history["relative_l2"][-1]
    assert result.residual_rms == history["residual_rms"][-1]
    x = unknown_points(problem.discretize())
    np.testing.assert_array_equal(result.discrete_values, trainer.evaluate(x))
    np.testing.assert_array_equal(result.predict(x), result.discrete_values)
    errors = problem.discretize().error_norms(result.discrete_values)
    assert result.discrete_errors == errors
    assert 0 < result.train_time <= result.wall_time and result.setup_time > 0


def test_residual_criterion_stops_early_and_says_so():
    problem = pdesolve.get_problem("poisson", dim=1, n=15, solution="sine")
    result = pdesolve.fit(problem, method="pinn", steps=200, residual_atol=1e3, **TINY)
    assert result.steps == 10  # the first check (log_every) already meets it
    assert result.success and result.criteria[0].name == "residual_rms"
    assert result.criteria[0].value == result.residual_rms <= 1e3


def test_defaults_belong_to_the_method():
    """No budget is forced from outside: the PINN trains PINNTrainer's default number of steps,
    and configs/fit/pinn.yaml holds exactly the method's defaults."""
    trainer = inspect.signature(PINNTrainer).parameters
    own = inspect.signature(PINNFit).parameters
    cfg = yaml.safe_load((CONFIG_DIR / "fit" / "pinn.yaml").read_text())
    cfg = {k: v for k, v in cfg.items() if k not in ("defaults", "name")}
    expected = {name: p.default for name, p in trainer.items()
                if p.kind is p.KEYWORD_ONLY and name not in ("model", "optimizer", "rtol", "atol",
                                                             "callback")}  # fmt: skip
    expected.update({name: p.default for name, p in own.items() if p.kind is p.KEYWORD_ONLY
                     and name != "model"})  # fmt: skip
    assert cfg == expected


def test_bad_input_is_refused_before_training():
    poisson = pdesolve.get_problem("poisson", dim=2, n=8)
    with pytest.raises(pdesolve.UnknownNameError, match="unknown fit method 'pinnn'.*pinn"):
        pdesolve.fit(poisson, method="pinnn")
    with pytest.raises(pdesolve.UnknownNameError, match=r"is a solver.*pdesolve\.solve"):
        pdesolve.fit(poisson, method="petsc_cg")
    with pytest.raises(pdesolve.UnknownNameError, match=r"is a fit method.*pdesolve\.fit\(problem"):
        pdesolve.solve(poisson, method="pinn")
    inverse = pdesolve.get_problem("compressed_sensing", n=32)
    with pytest.raises(TypeError, match=r"inverse problem.*pdesolve\.recover"):
        pdesolve.fit(inverse, method="pinn")
    with pytest.raises(TypeError, match="not a LinearSystem"):
        pdesolve.fit(poisson.discretize())
    with pytest.raises(TypeError, match="takes a Problem"):
        pdesolve.fit("poisson")
    with pytest.raises(TypeError, match="no parameter 'rtol'.*residual_rtol"):
        pdesolve.fit(poisson, method="pinn", rtol=1e-3)
    with pytest.raises(TypeError, match="no parameter 'maxiter'.*steps"):
        pdesolve.fit(poisson, method="pinn", maxiter=10)
    with pytest.raises(ValueError, match="target_error must be"):
        pdesolve.fit(poisson, method="pinn", target_error=-1.0)
    no_exact = pdesolve.get_problem("diffusion", dim=2, coefficient="checkerboard")
    with pytest.raises(ValueError, match="target_error needs the exact solution"):
        pdesolve.fit(no_exact, method="pinn", target_error=0.1)
