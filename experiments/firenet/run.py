"""FIRENET reproduction: convergence, layers for ε accuracy, stability, Table 1.

    PYTHONPATH=. .venv/bin/python experiments/firenet/run.py            # full (~15 min, 1 core)
    PYTHONPATH=. .venv/bin/python experiments/firenet/run.py --quick    # smoke run (~2 min)
    ... run.py --only convergence layers                                # a subset

Writes CSV, PNG and ``results.md`` under ``experiments/firenet/results/`` (``results_quick/``
with ``--quick``). Every number in results.md is computed by this script.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, write_csv
from pdesolve.nn.lista import LISTA
from pdesolve.plotting import save_figure, subplots
from pdesolve.problems.inverse import ellipse_images
from pdesolve.problems.inverse_operators import SubsampledFourier, multilevel_mask
from pdesolve.recovery.firenet import FIRENET, firenet
from pdesolve.recovery.lasso import sr_lasso_objective
from pdesolve.recovery.primal_dual import chambolle_pock_block
from pdesolve.train.perturbation import worst_case_perturbation
from pdesolve.train.unet_training import UNetTrainConfig, train_unet

HERE = Path(__file__).resolve().parent


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def psnr(img: np.ndarray, ref: np.ndarray) -> float:
    mse = float(np.mean((img - ref) ** 2))
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def ssim(img: np.ndarray, ref: np.ndarray, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004), Gaussian window σ = 1.5, data range 1."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = gaussian_filter(img, sigma), gaussian_filter(ref, sigma)
    sxx = gaussian_filter(img * img, sigma) - mu_x**2
    syy = gaussian_filter(ref * ref, sigma) - mu_y**2
    sxy = gaussian_filter(img * ref, sigma) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


# ------------------------------------------------------------------------------ convergence ---
def convergence(
    out: Path, quick: bool, report: list[str], n: int | None = None, ref_its: int | None = None
) -> None:
    """Relative error and objective gap against layers; ``n`` = image side (256 by default).

    At N = 512 (``convergence512``) the reference uses 2500 CP iterations and a 2500-layer
    FIRENET (p = 20) instead of 6000 of each, to stay within ~10 core-minutes."""
    big = n is not None
    n = n or (64 if quick else 256)
    tag = f"_{n}" if big else ""
    lam, noise = 3e-3, 0.02
    problem = pdesolve.get_problem(
        "compressed_sensing",
        n=n,
        rate=0.25,
        noise=noise,
        lam=lam,
        image="phantom",
        levels=int(math.log2(n)) - 2,
        seed=0,
    )
    A, y, c_true = problem.operator, problem.measurements, problem.coefficients
    total = 200 if quick else 400
    ref_its = ref_its or (1500 if quick else 6000)
    ref_p = 20 if big else 40
    t0 = time.perf_counter()
    ref = chambolle_pock_block(
        A, y, torch.zeros_like(c_true), lam=lam, tau=1.0, sigma=1.0, p=ref_its
    )
    long_fn = firenet(A, y, lam=lam, inner_iterations=ref_p, restarts=ref_its // ref_p, delta=0.0)
    cands = [ref.x, ref.x_last, long_fn]
    fvals = [float(sr_lasso_objective(A, c, y, lam)) for c in cands]
    f_star = min(fvals)
    x_star = cands[int(np.argmin(fvals))]
    ref_time = time.perf_counter() - t0
    curves: dict[str, list[tuple[int, float, float, float]]] = {}

    def record(name: str):
        curves[name] = []

        def cb(k: int, x: torch.Tensor) -> None:
            curves[name].append(
                (
                    k,
                    rel(x, c_true),
                    rel(x, x_star),
                    float(sr_lasso_objective(A, x, y, lam)) - f_star,
                )
            )

        return cb

    for p in (5, 10, 20):
        firenet(
            A,
            y,
            lam=lam,
            inner_iterations=p,
            restarts=total // p,
            delta=1e-9,
            inner_callback=record(f"FIRENET p={p}"),
        )
    x, z = torch.zeros_like(c_true), None
    cb_cp, cb_erg = record("CP (last iterate)"), record("CP (ergodic)")
    x_sum = torch.zeros_like(c_true)
    z = torch.zeros_like(y)
    from pdesolve.recovery.primal_dual import cp_step

    for k in range(1, total + 1):
        x, z = cp_step(A, x, z, y, lam, 1.0, 1.0)
        x_sum = x_sum + x
        cb_cp(k, x)
        cb_erg(k, x_sum / k)
    rows = [
        {
            "method": m,
            "iteration": k,
            "rel_error_truth": e,
            "rel_error_minimiser": d,
            "objective_gap": g,
        }
        for m, pts in curves.items()
        for k, e, d, g in pts
    ]
    write_csv(out / f"convergence{tag}.csv", rows)
    fig, ax = subplots(1, 3, figsize=(15, 4.2))
    for m, pts in curves.items():
        k = [p[0] for p in pts]
        ax[0].semilogy(k, [p[1] for p in pts], label=m)
        ax[1].semilogy(k, [max(p[2], 1e-17) for p in pts], label=m)
        ax[2].semilogy(
            k, [max(p[3], 1e-17) / float(torch.linalg.vector_norm(c_true)) for p in pts], label=m
        )
    sr_err = rel(x_star, c_true)
    ax[0].axhline(sr_err, color="k", ls=":", label="SR-LASSO minimiser")
    ax[0].axhline(noise, color="gray", ls="--", label="noise level 2%")
    for a, t in zip(
        ax,
        [
            "||c_k − c|| / ||c|| (truth)",
            "||c_k − c*|| / ||c*|| (minimiser)",
            "(F(c_k) − F*) / ||c||",
        ],
        strict=True,
    ):
        a.set_xlabel("total inner iterations (layers)")
        a.set_title(t)
    ax[0].legend(fontsize=8)
    fig.suptitle(f"N = {n}, 25% multilevel Fourier, Haar, 2% noise, λ = {lam}")
    save_figure(fig, out / f"convergence{tag}.png", dpi=110)
    at = {m: pts[-1] for m, pts in curves.items()}
    lines = [
        f"## Convergence (N = {n}, 25% multilevel Fourier sampling, Haar, 2% noise, λ = {lam})",
        "",
        f"Reference F* from {ref_its} CP iterations and a {ref_its}-layer FIRENET "
        f"(p = {ref_p}), best of the two ({ref_time:.1f} s); the SR-LASSO minimiser is "
        f"{sr_err:.4f} from the truth (relative).",
        "",
    ]
    cn = float(torch.linalg.vector_norm(c_true))
    lines += markdown_table([
        {"method": m, f"rel. error to truth @{total}": f"{e:.4f}",
         f"rel. distance to minimiser @{total}": f"{d:.2e}",
         f"(F − F*)/‖c‖ @{total}": f"{g / cn:.2e}"}
        for m, (_, e, d, g) in at.items()
    ]).splitlines()  # fmt: skip
    for m in ("FIRENET p=5", "FIRENET p=20", "CP (last iterate)"):
        pts = curves[m]
        marks = [pt for pt in pts if pt[0] in (25, 50, 100, 200)]
        lines.append("")
        lines.append(
            f"{m}: rel. error to truth at 25/50/100/200 layers = "
            + ", ".join(f"{pt[1]:.4f}" for pt in marks)
        )
    report.extend([*lines, "", f"![convergence](convergence{tag}.png)", ""])


# ---------------------------------------------------------------- sharpness and the p = 5 stall ---
def _transcribed_firenet(A, y, lam: float, p: int, restarts: int, delta: float) -> torch.Tensor:
    """The restart schedule of the official ``cp_expo_sr_lasso`` + ``cp_ergodic_sr_lasso``, line
    by line (τ = σ = 1, L_A = 1), written independently of ``pdesolve.recovery``: a cross-check."""
    psi, eps = torch.zeros(A.domain_shape, dtype=torch.float64), float(torch.linalg.norm(y))
    for _ in range(restarts):
        eps = math.exp(-1) * (delta + eps)
        beta = eps / 2.0
        al = 1.0 / (beta * p)
        xp, yp, x_sum = al * psi, torch.zeros_like(y), torch.zeros_like(psi)
        for _ in range(p):
            v = xp - A.adjoint(yp)
            xpp = torch.clamp(v.abs() - lam, min=0.0) * torch.sign(v)
            w = yp + A.forward(2 * xpp - xp) - al * y
            ypp = min(1.0, 1.0 / (float(torch.linalg.norm(w)) + 1e-43)) * w
            x_sum, xp, yp = x_sum + xpp, xpp, ypp
        psi = x_sum / p / al
    return psi


def sharpness(out: Path, quick: bool, report: list[str]) -> None:
    """Why p = 5 stalls: the restart invariant F(ψ_l) − F* <= ε_l against the sharpness constant.

    From the Chambolle–Pock ergodic bound with τ = σ = 1/L_A and z_0 = 0,
    F(X̄_p) − F(x) <= (L_A / 2p) (‖x_0 − x‖ + 1)² for the rescaled problem; with the schedule of
    §4.2 and the approximate sharpness ‖x − x*‖ <= C (F(x) − F* + δ) this gives
    F(ψ_l) − F* <= (ε_l/4) (1 + 2e C L_A / p)², i.e. the invariant F(ψ_l) − F* <= ε_l is kept
    whenever p >= 2e C L_A (sufficient). C is estimated from below as the largest
    ‖x − x*‖/(F(x) − F*) seen on the CP and FIRENET paths.
    """
    cases = [
        ("layers problem: N = 64, 300-sparse, 40%, λ = 0.02",
         {"n": 64, "image": "sparse_phantom", "sparsity": 300, "rate": 0.4, "lam": 0.02}),
        ("test problem: N = 32, 60-sparse, 50%, λ = 0.03",
         {"n": 32, "image": "sparse_phantom", "sparsity": 60, "rate": 0.5, "lam": 0.03}),
    ]  # fmt: skip
    if quick:
        cases = cases[1:]
    rows, lines = (
        [],
        [
            "## Sharpness and the p = 5 stall (noiseless, exactly sparse: x* = truth, δ = 0)",
            "",
            "Restart invariant of the §4.2 schedule: F(ψ_l) − F* <= ε_l (ε_0 = ‖y‖ = F(0)). "
            "Sufficient condition (our derivation from the CP ergodic bound): p >= 2e·C·L_A, "
            "C = sharpness constant, estimated from below on the CP/FIRENET paths.",
            "",
        ],
    )
    table = []
    for title, kw in cases:
        problem = pdesolve.get_problem("compressed_sensing", **kw)
        A, y, c, lam = problem.operator, problem.measurements, problem.coefficients, problem.lam
        f_star = float(sr_lasso_objective(A, c, y, lam))
        from pdesolve.recovery.primal_dual import cp_step

        x, z, sharp = torch.zeros_like(c), torch.zeros_like(y), 0.0
        for _ in range(600):
            x, z = cp_step(A, x, z, y, lam, 1.0, 1.0)
            gap = float(sr_lasso_objective(A, x, y, lam)) - f_star
            if gap > 1e-9 * f_star:
                sharp = max(sharp, float(torch.linalg.vector_norm(x - c)) / gap)
        per_p = {}
        for p in (5, 10, 20):
            hist: list[tuple[float, float, float]] = []

            def cb(level: int, psi: torch.Tensor, hist=hist, A=A, y=y, lam=lam, c=c,
                   f_star=f_star) -> None:  # fmt: skip
                gap = float(sr_lasso_objective(A, psi, y, lam)) - f_star
                hist.append((gap, float(torch.linalg.vector_norm(psi - c)), rel(psi, c)))

            psi = firenet(A, y, lam=lam, inner_iterations=p, restarts=300 // p, delta=0.0,
                          restart_callback=cb)  # fmt: skip
            for gap, dist, _ in hist:
                if gap > 1e-9 * f_star:
                    sharp = max(sharp, dist / gap)
            per_p[p] = (hist, psi)
        for p, (hist, psi) in per_p.items():
            y_norm = float(torch.linalg.vector_norm(y))
            eps = [y_norm * math.exp(-(l + 1)) for l in range(len(hist))]
            ratios = [g / e for (g, _, _), e in zip(hist, eps, strict=True)]
            first = next((l + 1 for l, r in enumerate(ratios) if r > 1.0), None)
            trans = _transcribed_firenet(A, y, lam, p, 300 // p, 0.0)
            diff = float((trans - psi).abs().max())
            for l, (g, _, e) in enumerate(hist):
                rows.append({"problem": title, "p": p, "restart": l + 1, "gap": g,
                             "eps": eps[l], "ratio": ratios[l], "rel_error": e})  # fmt: skip
            table.append({
                "problem": title, "C (lower est.)": f"{sharp:.2f}",
                "2e·C·L_A": f"{2 * math.e * sharp * A.norm_bound:.1f}", "p": p,
                "(F(ψ_l)−F*)/ε_l, l = 1..8": ", ".join(f"{r:.2f}" for r in ratios[:8]),
                "first l with F(ψ_l)−F* > ε_l": first if first else "—",
                "rel. error @ 300 layers": f"{hist[-1][2]:.1e}",
                "max abs(ours − transcription)": f"{diff:.1e}",
            })  # fmt: skip
    write_csv(out / "sharpness.csv", rows)
    report.extend([*lines, *markdown_table(table).splitlines(), ""])


# ----------------------------------------------------------------- Poisson sparse source ---
def _cp_run(A, y, lam: float, iterations: int, weights=None) -> torch.Tensor:
    """Plain Chambolle–Pock (last iterate), τ = σ = 1/L_A."""
    from pdesolve.recovery.primal_dual import cp_step

    L = A.norm_bound
    thr = lam / L if weights is None else lam / L * weights
    x = torch.zeros(A.domain_shape, dtype=torch.float64)
    z = torch.zeros(A.range_shape, dtype=torch.float64)
    for _ in range(iterations):
        x, z = cp_step(A, x, z, y, thr, 1.0 / L, 1.0 / L)
    return x


def poisson_source(out: Path, quick: bool, report: list[str]) -> None:
    """Sparse Poisson source from 25% point values: formulations, then a noise sweep."""
    p_in, restarts = 100, 40
    cp_its = 2000 if quick else 4000
    seeds = range(2) if quick else range(5)

    def src_err(problem, w: torch.Tensor) -> float:
        c = problem.synthesize(w).reshape(-1)
        return rel(c, problem.source_values)

    lines = [
        "## Poisson sparse source (n = 31: 961 unknowns, 240 sensors = 25%, 4 sources in [1, 2])",
        "",
        f"FIRENET p = {p_in}, n = {restarts} ({p_in * restarts} layers), δ = 1e-12; CP = plain "
        f"Chambolle–Pock, τ = σ = 1/L_A. Errors are ‖c_rec − c‖/‖c‖ on the source grid. C = "
        "sharpness constant estimated from below on the CP path (noiseless, x* = truth).",
        "",
        "### Formulations (seed 0, λ as listed)",
        "",
    ]
    form_rows, table = [], []
    recs = {}
    for form, lam in (("raw", 0.1), ("normalized", 0.1), ("whitened", 0.1)):
        for noise in (0.0, 0.01):
            problem = pdesolve.get_problem("poisson_source", formulation=form, noise=noise,
                                           lam=lam, seed=0)  # fmt: skip
            A, y, w_true = problem.operator, problem.measurements, problem.coefficients
            weights = None if problem.weights is None else torch.as_tensor(problem.weights)
            fn = firenet(A, y, lam=lam, inner_iterations=p_in, restarts=restarts, delta=1e-12,
                         weights=weights)  # fmt: skip
            cp = _cp_run(A, y, lam, cp_its, weights)
            sharp = float("nan")
            if noise == 0.0:
                f_star = float(sr_lasso_objective(A, w_true, y, lam, weights))
                from pdesolve.recovery.primal_dual import cp_step

                L = A.norm_bound
                thr = lam / L if weights is None else lam / L * weights
                x, z, sharp = torch.zeros_like(w_true), torch.zeros_like(y), 0.0
                for k in range(2000):
                    x, z = cp_step(A, x, z, y, thr, 1.0 / L, 1.0 / L)
                    if k % 10 == 0:
                        gap = float(sr_lasso_objective(A, x, y, lam, weights)) - f_star
                        if gap > 1e-9 * f_star:
                            sharp = max(sharp, float(torch.linalg.vector_norm(x - w_true)) / gap)
            row = {"formulation": form, "lam": lam, "L_A": A.norm_bound, "C_lower": sharp,
                   "noise": noise, "firenet_error": src_err(problem, fn),
                   "cp_error": src_err(problem, cp)}  # fmt: skip
            form_rows.append(row)
            recs[(form, noise)] = (problem, fn)
            th = f"{2 * math.e * sharp * A.norm_bound:.0f}" if noise == 0.0 else ""
            cs = f"{sharp:.1f}" if noise == 0.0 else ""
            table.append({
                "formulation": form, "λ": str(lam), "L_A": f"{A.norm_bound:.3g}",
                "C (lower est.)": cs, "2e·C·L_A": th, "noise": str(noise),
                "FIRENET error": f"{row['firenet_error']:.1e}",
                f"CP {cp_its} its error": f"{row['cp_error']:.1e}",
            })  # fmt: skip
            print(f"  poisson {row}", flush=True)
    write_csv(out / "poisson_formulations.csv", form_rows)
    deep = (400, 25)  # the depth that every seed below needs (p = 100 is not enough for one)
    sweep_its = 2000 if quick else 4000
    lines += [
        *markdown_table(table).splitlines(),
        "",
        f"### Noise sweep, whitened formulation (defaults, seeds {seeds.start}..{seeds.stop - 1})",
        "",
        "`noise` = ‖e‖/‖A c‖ on the raw sensor values; `whitened noise` = ‖M e‖/‖M A c‖. "
        f"'minimiser' = plain CP after {sweep_its} iterations. FIRENET at two depths: "
        f"p = {p_in}, n = {restarts} ({p_in * restarts} layers) and p = {deep[0]}, "
        f"n = {deep[1]} ({deep[0] * deep[1]} layers). Per-seed values: `poisson_sweep.csv`.",
        "",
    ]
    sweep, table = [], []
    for noise in (0.0, 1e-2):
        per = []
        for seed in seeds:
            problem = pdesolve.get_problem("poisson_source", noise=noise, seed=seed)
            A, y, lam = problem.operator, problem.measurements, problem.lam
            fn = firenet(A, y, lam=lam, inner_iterations=p_in, restarts=restarts, delta=1e-12)
            fd = firenet(A, y, lam=lam, inner_iterations=deep[0], restarts=deep[1], delta=1e-12)
            cp = _cp_run(A, y, lam, sweep_its)
            r = {"noise": noise, "seed": seed,
                 "whitened_noise": problem.noise_norm / float(torch.linalg.norm(
                     problem.clean_measurements)),
                 "minimiser_error": src_err(problem, cp),
                 "firenet_error": src_err(problem, fn), "firenet_deep_error": src_err(problem, fd),
                 "firenet_deep_to_minimiser": rel(fd, cp)}  # fmt: skip
            per.append(r)
            sweep.append(r)
        med = {k: float(np.median([r[k] for r in per])) for k in per[0] if k != "seed"}
        mx = {k: float(np.max([r[k] for r in per])) for k in per[0] if k != "seed"}
        deep_layers = deep[0] * deep[1]
        table.append({
            "noise": str(noise), "whitened noise (median)": f"{med['whitened_noise']:.3f}",
            "minimiser error median / max":
                f"{med['minimiser_error']:.1e} / {mx['minimiser_error']:.1e}",
            f"FIRENET {p_in * restarts} error median / max":
                f"{med['firenet_error']:.1e} / {mx['firenet_error']:.1e}",
            f"FIRENET {deep_layers} error median / max":
                f"{med['firenet_deep_error']:.1e} / {mx['firenet_deep_error']:.1e}",
            f"‖FIRENET {deep_layers} − minimiser‖/‖minimiser‖ max":
                f"{mx['firenet_deep_to_minimiser']:.1e}",
        })  # fmt: skip
        print(f"  poisson noise {noise}: {med} {mx}", flush=True)
    write_csv(out / "poisson_sweep.csv", sweep)
    lines += markdown_table(table).splitlines()
    fig, ax = subplots(1, 4, figsize=(15, 3.8))
    truth = recs[("whitened", 0.01)][0]
    panels = [(truth.image, "true source c"),
              (recs[("whitened", 0.01)][0].synthesize(recs[("whitened", 0.01)][1]).numpy(),
               "FIRENET, whitened, 1% noise"),
              (recs[("normalized", 0.01)][0].synthesize(recs[("normalized", 0.01)][1]).numpy(),
               "FIRENET, column-normalised"),
              (recs[("raw", 0.01)][0].synthesize(recs[("raw", 0.01)][1]).numpy(),
               "FIRENET, raw A (column weights)")]  # fmt: skip
    for a, (im, title) in zip(ax, panels, strict=True):
        h = a.imshow(im, cmap="viridis")
        rows_, cols_ = np.unravel_index(truth.points, truth.grid_shape)
        if title.startswith("true"):
            a.plot(cols_, rows_, "w.", ms=2)
        a.set_title(title, fontsize=9)
        a.axis("off")
        fig.colorbar(h, ax=a, fraction=0.046)
    save_figure(fig, out / "poisson_source.png", dpi=100)
    report.extend([*lines, "", "![poisson](poisson_source.png)", ""])


# ------------------------------------------------------------------------- layers for ε ---
def layers_for_eps(out: Path, quick: bool, report: list[str]) -> None:
    n = 32 if quick else 64
    sparsity = 60 if quick else 300
    lam = 0.03 if quick else 0.02
    problem = pdesolve.get_problem(
        "compressed_sensing",
        n=n,
        image="sparse_phantom",
        sparsity=sparsity,
        rate=0.4 if not quick else 0.5,
        lam=lam,
    )
    A, y, c = problem.operator, problem.measurements, problem.coefficients
    total = 600
    eps_list = [10.0**-k for k in range(1, 11)]
    hist: dict[str, list[float]] = {}

    def rec(name: str):
        hist[name] = []
        return lambda k, x: hist[name].append(rel(x, c))

    for p in (5, 10, 20):
        firenet(
            A,
            y,
            lam=lam,
            inner_iterations=p,
            restarts=total // p,
            delta=0.0,
            inner_callback=rec(f"FIRENET p={p}"),
        )
    out_cp = []
    x, z = torch.zeros_like(c), torch.zeros_like(y)
    from pdesolve.recovery.primal_dual import cp_step

    for _ in range(total):
        x, z = cp_step(A, x, z, y, lam, 1.0, 1.0)
        out_cp.append(rel(x, c))
    hist["CP (last iterate)"] = out_cp
    rows, table = [], []
    for name, errs in hist.items():
        firsts = []
        for eps in eps_list:
            hit = next((i + 1 for i, e in enumerate(errs) if e <= eps), None)
            firsts.append(hit)
            rows.append({"method": name, "eps": eps, "layers": hit if hit is not None else ""})
        table.append((name, firsts))
    write_csv(out / "layers_for_eps.csv", rows)
    fig, ax = subplots(figsize=(6, 4))
    for name, firsts in table:
        pts = [(math.log10(1 / e), f) for e, f in zip(eps_list, firsts, strict=True) if f]
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", label=name)
    ax.set_xlabel("log10(1/ε)")
    ax.set_ylabel("layers to reach relative error ε")
    ax.legend()
    save_figure(fig, out / "layers_for_eps.png", dpi=110)
    heads = [f"ε=1e-{k}" for k in range(1, 11)]  # eps_list
    lines = [
        f"## Layers for ε accuracy (N = {n}, exactly {sparsity}-sparse Haar phantom, noiseless, "
        f"λ = {lam}, δ = 0)",
        "",
        *markdown_table([{"method": name, **{h: str(f) if f else f">{total}"
                                          for h, f in zip(heads, firsts, strict=True)}}
                      for name, firsts in table], columns=["method", *heads]).splitlines(),
    ]  # fmt: skip
    for name, firsts in table:
        pts = [(math.log10(1 / e), f) for e, f in zip(eps_list, firsts, strict=True) if f]
        if len(pts) >= 3:
            slope = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)[0]
            lines.append(
                f"\n{name}: least-squares slope {slope:.1f} layers per decade of ε "
                f"({len(pts)} points)"
            )
    report.extend([*lines, "", "![layers](layers_for_eps.png)", ""])


# ------------------------------------------------------------------------------- stability ---
def stability(out: Path, quick: bool, report: list[str]) -> None:
    n = 64 if quick else 128
    count = 200 if quick else 1000
    epochs = 2 if quick else 6
    rate, noise = 0.25, 0.01
    lam, p, restarts = 3e-3, 20, 8
    mask = multilevel_mask(n, rate, seed=0)
    sampler = SubsampledFourier(mask)
    template = pdesolve.get_problem("compressed_sensing", n=n, rate=rate, lam=lam, seed=0)
    assert np.array_equal(template.mask, mask)
    W = template.synthesis
    # --- U-Net trained on random ellipses, input Re(A* y) with 1% noise
    torch.manual_seed(0)
    imgs = torch.as_tensor(ellipse_images(count, n, seed=1), dtype=torch.float32)
    gen = torch.Generator().manual_seed(2)

    cfg = UNetTrainConfig(n=n, rate=rate, mask_seed=0, count=count, image_seed=1, noise=noise,
                          noise_seed=2, features=16, depth=3, epochs=epochs, batch=16, lr=1e-3,
                          seed=0)  # fmt: skip
    t0 = time.perf_counter()
    net, history = train_unet(cfg, imgs, sampler, gen=gen)  # advances gen (used again below)
    losses = [h["train_mse"] for h in history]
    train_time = time.perf_counter() - t0
    net.eval()

    class UNetMap(torch.nn.Module):
        def forward(self, yb: torch.Tensor) -> torch.Tensor:
            return net(sampler.adjoint(yb).float()[None, None])[0, 0].double()

    unet_map = UNetMap()
    fire_map = FIRENET(template.operator, W, lam=lam, inner_iterations=p, restarts=restarts)
    # --- test image (unseen seed), clean measurements
    x = torch.as_tensor(ellipse_images(1, n, seed=123)[0], dtype=torch.float64)
    y = sampler.forward(x)
    maps = {"FIRENET": fire_map, "U-Net": unet_map}
    steps = 40 if quick else 150
    rows, summary, recs = [], {}, {}
    for name, phi in maps.items():
        t1 = time.perf_counter()
        res = worst_case_perturbation(
            phi, sampler, x, steps=steps, lr=0.01, momentum=0.9, lam=0.01, max_norm=8.0 * n / 256
        )
        for k, h in enumerate(res.history):
            rows.append({"method": name, "step": k, **h})
        with torch.no_grad():
            clean, pert = phi(y).numpy(), phi(y + res.e).numpy()
        recs[name] = (clean, pert, res)
        summary[name] = {"search_time_s": time.perf_counter() - t1}
    # cross-apply each method's worst perturbation to the other map, and a random one of equal size
    cross = {}
    for name, phi in maps.items():
        for src in maps:
            e = recs[src][2].e
            with torch.no_grad():
                cross[(name, src)] = phi(y + e).numpy()
        e_rand = torch.complex(
            torch.randn(y.shape, dtype=torch.float64, generator=gen),
            torch.randn(y.shape, dtype=torch.float64, generator=gen),
        )
        e_rand = e_rand * (
            torch.linalg.vector_norm(recs[name][2].e) / torch.linalg.vector_norm(e_rand)
        )
        with torch.no_grad():
            cross[(name, "random")] = phi(y + e_rand).numpy()
    write_csv(out / "stability_path.csv", rows)
    xs = x.numpy()
    table = []
    for name in maps:
        clean, pert, res = recs[name]
        e_norm = float(torch.linalg.vector_norm(res.e))
        change = float(np.linalg.norm(pert - clean))
        table.append(
            {
                "method": name,
                "psnr_clean": psnr(clean, xs),
                "ssim_clean": ssim(clean, xs),
                "e_norm": e_norm,
                "e_rel": e_norm / float(torch.linalg.vector_norm(y)),
                "output_change": change,
                "ratio": change / e_norm,
                "psnr_worst": psnr(pert, xs),
                "ssim_worst": ssim(pert, xs),
                "psnr_other_worst": psnr(
                    cross[(name, "U-Net" if name == "FIRENET" else "FIRENET")], xs
                ),
                "psnr_random_same_norm": psnr(cross[(name, "random")], xs),
            }
        )
    y_norm = float(torch.linalg.vector_norm(y))
    for r in table:  # output change on the search path where ||e|| first reaches 1% / 5% of ||y||
        path = [h for h in rows if h["method"] == r["method"]]
        for frac in (0.01, 0.05):
            hit = next((h for h in path if h["e_norm"] >= frac * y_norm), None)
            r[f"change_at_{frac}"] = hit["output_change"] / hit["e_norm"] if hit else float("nan")
    write_csv(out / "stability.csv", table)
    fig, ax = subplots(figsize=(6, 4))
    for name in maps:
        pts = [(r["e_norm"], r["output_change"]) for r in rows if r["method"] == name]
        ax.loglog(*zip(*pts, strict=True), ".-", label=name)
    lim = [min(r["e_norm"] for r in rows), max(r["e_norm"] for r in rows)]
    ax.loglog(lim, lim, "k:", label="||Φ(y+e) − Φ(y)|| = ||e||")
    ax.set_xlabel("||e||  (e = A r, worst-case search path)")
    ax.set_ylabel("||Φ(y+e) − Φ(y)||")
    ax.legend()
    save_figure(fig, out / "stability_curve.png", dpi=110)
    fig, ax = subplots(2, 4, figsize=(14, 7))
    for i, name in enumerate(maps):
        clean, pert, res = recs[name]
        other = "U-Net" if name == "FIRENET" else "FIRENET"
        panels = [
            (xs, "truth"),
            (clean, f"{name}(y)"),
            (pert, f"{name}(y + e_{name})"),
            (cross[(name, other)], f"{name}(y + e_{other})"),
        ]
        for j, (im, title) in enumerate(panels):
            ax[i, j].imshow(im, cmap="gray", vmin=0, vmax=1)
            ax[i, j].set_title(f"{title}\nPSNR {psnr(im, xs):.1f} dB", fontsize=9)
            ax[i, j].axis("off")
    save_figure(fig, out / "stability_images.png", dpi=100)
    lines = [
        f"## Stability (N = {n}, 25% multilevel Fourier, random-ellipse test image)",
        "",
        f"U-Net: 16 base features, depth 3, trained on {count} random-ellipse images with 1% "
        f"noise, {epochs} epochs, Adam 1e-3, batch 16 ({train_time:.0f} s, final train MSE "
        f"{losses[-1]:.2e}). FIRENET: λ = {lam}, p = {p}, n = {restarts} ({p * restarts} "
        f"layers), no training. Worst-case search: {steps} Nesterov steps, lr 0.01, momentum "
        f"0.9, λ_stab 0.01, stop at ||r|| > 8·N/256, real image-domain r. 'ratio' = "
        f"‖Φ(y+e)−Φ(y)‖/‖e‖ (Φ outputs images, e measurements; ‖A‖ = 1).",
        "",
        *markdown_table([{
            "method": r["method"], "PSNR clean": f"{r['psnr_clean']:.2f}",
            "SSIM clean": f"{r['ssim_clean']:.3f}",
            "‖e‖ (rel. to ‖y‖)": f"{r['e_norm']:.3f} ({r['e_rel']:.3f})",
            "‖Φ(y+e)−Φ(y)‖": f"{r['output_change']:.3f}", "ratio": f"{r['ratio']:.2f}",
            "ratio at ‖e‖=1% ‖y‖": f"{r['change_at_0.01']:.2f}",
            "ratio at 5%": f"{r['change_at_0.05']:.2f}", "PSNR worst": f"{r['psnr_worst']:.2f}",
            "SSIM worst": f"{r['ssim_worst']:.3f}",
            "PSNR under other's e": f"{r['psnr_other_worst']:.2f}",
            "PSNR random e, same norm": f"{r['psnr_random_same_norm']:.2f}",
        } for r in table]).splitlines(),
    ]  # fmt: skip
    report.extend(
        [*lines, "", "![stability](stability_curve.png)", "", "![images](stability_images.png)", ""]
    )


# ------------------------------------------------------------------------------- Table 1 ---
def table1(out: Path, quick: bool, report: list[str]) -> None:
    epochs = 100 if quick else 300
    rows = []
    for K in (1, 3, 6):
        for n in (10, 20, 30):
            inexact = pdesolve.get_problem("inexact_lasso", K=K, n=n, j=2)
            exact = pdesolve.get_problem("inexact_lasso", K=K, n=n, j=1)
            x_star = exact.coefficients
            A, y = inexact.operator, inexact.measurements
            fn = firenet(A, y, lam=1.0, inner_iterations=50, restarts=30, delta=1e-6)
            # LISTA, 10 layers, trained on Ω_K samples for the operator it is given (A_n)
            torch.manual_seed(K * 100 + n)
            Y, X = inexact.training_set(8000, sparsity=5, seed=K * 100 + n)
            net = LISTA(inexact.matrix, layers=10)
            opt = torch.optim.Adam(net.parameters(), lr=2e-4)
            for _ in range(epochs):
                perm = torch.randperm(8000)
                for i in range(0, 8000, 1000):
                    idx = perm[i : i + 1000]
                    # relative MSE: x ~ 10^-K, so a raw MSE would sit below Adam's epsilon
                    loss = (net(Y[idx]) - X[idx]).square().sum() / X[idx].square().sum()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                lista_out = net(y)
                lista_train_rel = rel(net(Y[:500]), X[:500])
            rows.append(
                {
                    "K": K,
                    "n": n,
                    "bound_10^-K": 10.0**-K,
                    "dist_FIRENET": float(torch.linalg.vector_norm(fn - x_star)),
                    "dist_LISTA": float(torch.linalg.vector_norm(lista_out - x_star)),
                    "dist_FIRENET_to_own_minimiser": float(
                        torch.linalg.vector_norm(fn - inexact.coefficients)
                    ),
                    "LISTA_train_rel_error": lista_train_rel,
                    "A_diff": float(np.linalg.norm(inexact.matrix - exact.matrix, 2)),
                }
            )
            print(f"  Table 1 K={K} n={n}: {rows[-1]}", flush=True)
    write_csv(out / "table1.csv", rows)
    lines = [
        "## Table 1: inexact input (N1 = 2, N2 = 20, δ = 1/6, λ = 1, DCT-mixed)",
        "",
        "Input (A_n, y_n) = the Ω_K member with j = 2; distances to Ξ(A, y) = {minimiser of the "
        "j = 1 member}, ‖A_n − A‖ ≤ 2^-n. FIRENET: p = 50, n = 30, δ = 1e-6, τ = σ = 1/‖A_n‖ "
        f"(the official demo's τ = σ = √(1/‖A‖) violates τσ‖A‖² ≤ 1). LISTA: 10 layers, 8000 "
        f"samples, batch 1000, Adam 2e-4, {epochs} epochs.",
        "",
        *markdown_table([{
            "K": r["K"], "n": r["n"], "‖A_n − A‖": f"{r['A_diff']:.1e}",
            "d(LISTA, Ξ(A,y))": f"{r['dist_LISTA']:.7f}",
            "d(FIRENET, Ξ(A,y))": f"{r['dist_FIRENET']:.7f}", "10^-K": f"1e-{r['K']}",
            "FIRENET to own minimiser": f"{r['dist_FIRENET_to_own_minimiser']:.1e}",
            "LISTA train rel. error": f"{r['LISTA_train_rel_error']:.1e}",
        } for r in rows]).splitlines(),
    ]  # fmt: skip
    report.extend([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a couple of minutes")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=[
            "convergence",
            "convergence512",
            "sharpness",
            "poisson",
            "layers",
            "stability",
            "table1",
        ],
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = args.out or HERE / ("results_quick" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    parts = {
        "convergence": convergence,
        "convergence512": lambda o, q, r: convergence(
            o, q, r, n=128 if q else 512, ref_its=None if q else 2500
        ),
        "sharpness": sharpness,
        "poisson": poisson_source,
        "layers": layers_for_eps,
        "stability": stability,
        "table1": table1,
    }
    chosen = args.only or list(parts)
    timings = {}
    for name in chosen:
        report: list[str] = []
        t0 = time.perf_counter()
        print(f"[{name}]", flush=True)
        parts[name](out, args.quick, report)
        timings[name] = time.perf_counter() - t0
        (out / f"{name}.md").write_text("\n".join(report) + f"\n_run time {timings[name]:.0f} s_\n")
    sections = [(out / f"{name}.md").read_text() for name in parts if (out / f"{name}.md").exists()]
    header = [
        "# FIRENET results",
        "",
        f"Generated by `experiments/firenet/run.py{' --quick' if args.quick else ''}`"
        f" (torch {torch.__version__}, {args.threads} thread(s), float64 solvers).",
        "",
    ]
    (out / "results.md").write_text("\n".join(header) + "\n".join(sections))
    old = out / "timings.json"  # keep the timings of the parts not rerun now
    merged = {**(json.loads(old.read_text()) if old.exists() else {}), **timings}
    old.write_text(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
