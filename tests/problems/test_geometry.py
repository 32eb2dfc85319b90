"""Shapes: signed distances, hard-constraint distances, uniform sampling of unions/differences."""

import math

import numpy as np
import pytest
import torch

from pdesolve.problems.geometry import (
    Difference,
    Disk,
    Interval,
    Rectangle,
    Union,
    boundary_lift,
    has_boundary_lift,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_square_minus_disks_samples_only_its_own_boundary():
    plate = Rectangle((-1, -1), (1, 1)) - Disk((0.3, 0.3), 0.2) - Disk((-0.4, -0.2), 0.3)
    assert isinstance(plate, Difference)
    b = plate.sample_boundary(4000, _gen())
    sd = plate.signed_distance(b)
    assert sd.abs().max() < 1e-12
    on_outer = (b.abs().max(dim=1).values - 1).abs() < 1e-12
    c1, c2 = (torch.tensor(c, dtype=torch.float64) for c in ([0.3, 0.3], [-0.4, -0.2]))
    on_first = ((b - c1).norm(dim=1) - 0.2).abs() < 1e-12
    on_second = ((b - c2).norm(dim=1) - 0.3).abs() < 1e-12
    assert bool((on_outer | on_first | on_second).all())
    # uniform by length: shares match 8 : 2π·0.2 : 2π·0.3
    lengths = np.array([8.0, 2 * math.pi * 0.2, 2 * math.pi * 0.3])
    shares = np.array([on_outer.sum(), on_first.sum(), on_second.sum()]) / len(b)
    np.testing.assert_allclose(shares, lengths / lengths.sum(), atol=0.03)
    x = plate.sample_interior(2000, _gen(1))
    assert bool((plate.signed_distance(x) <= 0).all())
    # area fraction by rejection: (4 - π(0.04 + 0.09)) / 4
    box = Rectangle((-1, -1), (1, 1)).sample_interior(20000, _gen(2))
    frac = plate.contains(box.numpy()).mean()
    assert frac == pytest.approx(1 - math.pi * 0.13 / 4, abs=0.01)


def test_difference_keeps_only_the_part_of_the_circle_inside():
    # a disk sticking out of the square: its outer arc bounds nothing
    shape = Rectangle((0, 0), (1, 1)) - Disk((1.0, 0.5), 0.25)
    b = shape.sample_boundary(2000, _gen())
    assert bool((b[:, 0] <= 1 + 1e-12).all())
    assert shape.signed_distance(b).abs().max() < 1e-12
    assert not shape.contains(np.array([[0.9, 0.5]]))[0]


def test_union_of_intervals_and_rectangles():
    u = Interval(0, 1) | Interval(2, 3)
    assert isinstance(u, Union)
    b = u.sample_boundary(400, _gen()).flatten()
    assert set(np.unique(b.numpy()).tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert u.contains(np.array([[0.5], [1.5], [2.5]])).tolist() == [True, False, True]
    l_shape = Rectangle((0, 0), (2, 1)) | Rectangle((0, 0), (1, 2))
    b = l_shape.sample_boundary(1000, _gen())
    assert l_shape.signed_distance(b).abs().max() < 1e-12
    # the overlap's inner edges (e.g. x=1, 0<y<1) are not boundary
    assert not bool(((b[:, 0] - 1).abs() < 1e-12).logical_and(b[:, 1] < 1 - 1e-9).any())
    lo, hi = l_shape.bounding_box
    assert lo.tolist() == [0, 0] and hi.tolist() == [2, 2]


def test_signed_distance_of_primitives_is_exact():
    r = Rectangle((0, 0), (2, 1))
    x = torch.tensor([[1.0, 0.5], [3.0, 2.0], [1.0, 1.25]], dtype=torch.float64)
    np.testing.assert_allclose(r.signed_distance(x).numpy(), [-0.5, math.sqrt(2), 0.25])
    d = Disk((0, 0), 1)
    np.testing.assert_allclose(d.signed_distance(x).numpy(), np.linalg.norm(x, axis=1) - 1)


def test_distance_vanishes_on_the_boundary_and_is_positive_inside():
    shape = Rectangle((-1, -1), (1, 1)) - Disk((0, 0), 0.4) | Disk((2, 0), 0.5)
    b = shape.sample_boundary(500, _gen())
    x = shape.sample_interior(500, _gen(1))
    assert shape.distance(b).abs().max() < 1e-12
    assert bool((shape.distance(x) > 0).all())
    # smooth: autograd gives finite gradients inside
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(shape.distance(x).sum(), x)
    assert bool(torch.isfinite(g).all())
    # first-order normalised on a circle: |∇D| = 1 on the boundary of a disk
    c = Disk((0, 0), 0.4).sample_boundary(10, _gen()).requires_grad_(True)
    (g,) = torch.autograd.grad(Disk((0, 0), 0.4).distance(c).sum(), c)
    np.testing.assert_allclose(g.norm(dim=1).numpy(), 1.0)


def test_bad_shapes():
    with pytest.raises(ValueError, match="lo < hi"):
        Rectangle((0, 1), (1, 0))
    with pytest.raises(ValueError, match="radius"):
        Disk((0, 0), 0)
    with pytest.raises(ValueError, match="2D shape"):
        Rectangle((0,), (1,)) - Disk((0, 0), 1)
    with pytest.raises(ValueError, match="shape"):
        Disk((0, 0), 1).contains(np.zeros((3, 3)))
    with pytest.raises(RuntimeError, match="almost empty"):
        (Disk((0, 0), 1) - Rectangle((-2, -2), (2, 2))).sample_interior(10, _gen())


def _smooth_data(x):
    return torch.sin(2 * x[:, 0]) * torch.exp(x[:, 1]) + x[:, -1]  # time (last column) too


def test_boundary_lift_meets_the_data_and_is_smooth_inside():
    plate = Rectangle((-0.5, -0.5), (0.5, 0.5)) - Disk((0.2, 0.2), 0.1) - Disk((-0.2, 0.1), 0.15)
    gen = torch.Generator().manual_seed(0)
    xb = plate.sample_boundary(400, gen)
    corners = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]],
                           dtype=torch.float64)  # fmt: skip
    xb = torch.cat([xb, corners])
    np.testing.assert_allclose(boundary_lift(plate, _smooth_data, xb), _smooth_data(xb),
                               atol=1e-12)  # fmt: skip
    xi = plate.sample_interior(400, gen).requires_grad_(True)
    lift = boundary_lift(plate, _smooth_data, xi)
    (grad,) = torch.autograd.grad(lift.sum(), xi, create_graph=True)
    second = torch.autograd.grad(grad[:, 0].sum(), xi)[0]
    assert torch.isfinite(second).all() and float(second.abs().max()) < 1e3
    # space-time points: the time column passes through to the data
    xt = torch.cat([xb, torch.full((xb.shape[0], 1), 0.7, dtype=torch.float64)], 1)
    np.testing.assert_allclose(boundary_lift(plate, _smooth_data, xt), _smooth_data(xt),
                               atol=1e-12)  # fmt: skip


def test_coons_patch_reproduces_bilinear_data_and_needs_only_boundary_values():
    box = Rectangle((0, 0), (2, 1))
    x = box.sample_interior(50, torch.Generator().manual_seed(1))
    bilinear = lambda p: 1 + p[:, 0] - 3 * p[:, 1] + 0.5 * p[:, 0] * p[:, 1]  # noqa: E731
    np.testing.assert_allclose(boundary_lift(box, bilinear, x), bilinear(x), atol=1e-13)
    seen = []
    boundary_lift(box, lambda p: seen.append(p) or p[:, 0], x)
    on_faces = torch.cat(seen)
    assert float(box.signed_distance(on_faces).abs().max()) < 1e-14  # g never read inside


def test_boundary_lift_refuses_unsupported_shapes():
    assert has_boundary_lift(Rectangle((0, 0), (1, 1)) - Disk((0.5, 0.5), 0.1))
    assert not has_boundary_lift(Rectangle((0, 0), (1, 1)) - Rectangle((0.4, 0.4), (0.6, 0.6)))
    assert not has_boundary_lift(Rectangle((0, 0), (1, 1)) | Disk((1, 1), 0.5))
    with pytest.raises(ValueError, match="no smooth boundary lift"):
        boundary_lift(Rectangle((0, 0), (1, 1)) - Rectangle((0.4, 0.4), (0.6, 0.6)),
                      _smooth_data, torch.zeros(1, 2, dtype=torch.float64))  # fmt: skip
