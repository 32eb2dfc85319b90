"""A rank's rows of P under MPI come from its stencils plus a halo: on one process, every row range
of ``prolongation_rows`` equals those rows of the whole grid's prolongation (black-box and the
learned network, whose neighbouring coarse points' scores enter each edge weight)."""

import pytest

import pdesolve
from pdesolve.linalg.petsc import csr_to_petsc
from pdesolve.solvers.distributed_pc import prolongation_rows
from pdesolve.solvers.multigrid import prolongation_matrix, pstencil_for, stencil_from_csr


@pytest.fixture(scope="module")
def case():
    system = pdesolve.get_problem("diffusion", n=31, coefficient="lognormal", sigma=1.0,
                                  seed=3, scheme="fe9").discretize()
    net = pdesolve.get_preconditioner("multigrid", prolongation="learned").network(2)
    return system, net


@pytest.mark.parametrize("rule", ["blackbox", "learned"])
@pytest.mark.filterwarnings("ignore::pdesolve.nn.prolongation.ProlongationGuardWarning")
def test_row_ranges_equal_the_whole_grids_rows(case, rule):
    system, net = case
    n = 31
    stencil = stencil_from_csr(system.A, n)
    whole = prolongation_matrix(pstencil_for(rule, stencil, net, precision="float64"), n)
    A = csr_to_petsc(system.A)
    # ranges cutting grid lines anywhere: first/last lines, mid-line starts, one coarse line
    for lo, hi in [(0, 200), (200, 517), (517, 961), (62, 124), (300, 301), (0, 961)]:
        P, nc = prolongation_rows(A, n, rule, lo, hi, net, precision="float64")
        assert nc == 15 and P.shape == (hi - lo, nc * nc)
        diff = abs(P - whole[lo:hi])
        assert (diff.max() if diff.nnz else 0.0) <= 1e-12 * abs(whole).max(), (lo, hi)
    A.destroy()
