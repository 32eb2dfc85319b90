"""FIRENET reproduction (issue 8): convergence, layers for ε accuracy, stability, Table 1.

    PYTHONPATH=. .venv/bin/python experiments/firenet/run.py            # full (~15 min, 1 core)
    PYTHONPATH=. .venv/bin/python experiments/firenet/run.py --quick    # smoke run (~2 min)
    ... run.py --only convergence layers                                # a subset

Writes CSV, PNG and ``results.md`` under ``experiments/firenet/results/`` (``results_quick/``
with ``--quick``). Every number in results.md is computed by this script.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import pdesolve
from pdesolve.nn.lista import LISTA
from pdesolve.nn.unet import UNet
from pdesolve.problems.inverse import ellipse_images
from pdesolve.problems.inverse_operators import SubsampledFourier, multilevel_mask
from pdesolve.solvers.firenet import FIRENET, firenet
from pdesolve.solvers.primal_dual import chambolle_pock_block
from pdesolve.solvers.sparse_recovery import sr_lasso_objective
from pdesolve.train.perturbation import worst_case_perturbation

HERE = Path(__file__).resolve().parent


def write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


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
def convergence(out: Path, quick: bool, report: list[str]) -> None:
    n = 64 if quick else 256
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
    ref_its = 1500 if quick else 6000
    t0 = time.perf_counter()
    ref = chambolle_pock_block(
        A, y, torch.zeros_like(c_true), lam=lam, tau=1.0, sigma=1.0, p=ref_its
    )
    long_fn = firenet(A, y, lam=lam, inner_iterations=40, restarts=ref_its // 40, delta=0.0)
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
    from pdesolve.solvers.primal_dual import cp_step

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
    write_csv(out / "convergence.csv", rows)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
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
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=110)
    plt.close(fig)
    at = {m: pts[-1] for m, pts in curves.items()}
    lines = [
        f"## Convergence (N = {n}, 25% multilevel Fourier sampling, Haar, 2% noise, λ = {lam})",
        "",
        f"Reference F* from {ref_its} CP iterations and a {ref_its}-layer FIRENET "
        f"(p = 40), best of the two ({ref_time:.1f} s); the SR-LASSO minimiser is "
        f"{sr_err:.4f} from the truth (relative).",
        "",
        f"| method | rel. error to truth @{total} | rel. distance to minimiser @{total} | "
        f"(F − F*)/‖c‖ @{total} |",
        "|---|---|---|---|",
    ]
    cn = float(torch.linalg.vector_norm(c_true))
    for m, (_, e, d, g) in at.items():
        lines.append(f"| {m} | {e:.4f} | {d:.2e} | {g / cn:.2e} |")
    for m in ("FIRENET p=5", "FIRENET p=20", "CP (last iterate)"):
        pts = curves[m]
        marks = [pt for pt in pts if pt[0] in (25, 50, 100, 200)]
        lines.append("")
        lines.append(
            f"{m}: rel. error to truth at 25/50/100/200 layers = "
            + ", ".join(f"{pt[1]:.4f}" for pt in marks)
        )
    report.extend([*lines, "", "![convergence](convergence.png)", ""])


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
    from pdesolve.solvers.primal_dual import cp_step

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
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, firsts in table:
        pts = [(math.log10(1 / e), f) for e, f in zip(eps_list, firsts, strict=True) if f]
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", label=name)
    ax.set_xlabel("log10(1/ε)")
    ax.set_ylabel("layers to reach relative error ε")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "layers_for_eps.png", dpi=110)
    plt.close(fig)
    head = "| method | " + " | ".join(f"ε=1e-{k}" for k in range(1, 11)) + " |"
    lines = [
        f"## Layers for ε accuracy (N = {n}, exactly {sparsity}-sparse Haar phantom, noiseless, "
        f"λ = {lam}, δ = 0)",
        "",
        head,
        "|---" * 11 + "|",
    ]
    for name, firsts in table:
        lines.append(
            f"| {name} | " + " | ".join(str(f) if f else f">{total}" for f in firsts) + " |"
        )
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

    def adjoint_input(batch: torch.Tensor, noisy: bool) -> torch.Tensor:
        yb = sampler.forward(batch.double())
        if noisy:
            e = torch.complex(
                torch.randn(yb.shape, generator=gen, dtype=torch.float64),
                torch.randn(yb.shape, generator=gen, dtype=torch.float64),
            )
            e = e * (
                noise
                * torch.linalg.vector_norm(yb, dim=-1, keepdim=True)
                / torch.linalg.vector_norm(e, dim=-1, keepdim=True)
            )
            yb = yb + e
        return sampler.adjoint(yb).float()

    net = UNet(features=16, depth=3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    losses = []
    for epoch in range(epochs):
        perm = torch.randperm(count)
        total = 0.0
        for i in range(0, count, 16):
            batch = imgs[perm[i : i + 16]]
            pred = net(adjoint_input(batch, True)[:, None])[:, 0]
            loss = (pred - batch).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / count)
        print(f"  U-Net epoch {epoch + 1}/{epochs}: mse {losses[-1]:.2e}", flush=True)
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
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in maps:
        pts = [(r["e_norm"], r["output_change"]) for r in rows if r["method"] == name]
        ax.loglog(*zip(*pts, strict=True), ".-", label=name)
    lim = [min(r["e_norm"] for r in rows), max(r["e_norm"] for r in rows)]
    ax.loglog(lim, lim, "k:", label="||Φ(y+e) − Φ(y)|| = ||e||")
    ax.set_xlabel("||e||  (e = A r, worst-case search path)")
    ax.set_ylabel("||Φ(y+e) − Φ(y)||")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "stability_curve.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(2, 4, figsize=(14, 7))
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
    fig.tight_layout()
    fig.savefig(out / "stability_images.png", dpi=100)
    plt.close(fig)
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
        "| method | PSNR clean | SSIM clean | ‖e‖ (rel. to ‖y‖) | ‖Φ(y+e)−Φ(y)‖ | ratio | "
        "ratio at ‖e‖=1% ‖y‖ | ratio at 5% | PSNR worst | SSIM worst | PSNR under other's e | "
        "PSNR random e, same norm |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['method']} | {r['psnr_clean']:.2f} | {r['ssim_clean']:.3f} | "
            f"{r['e_norm']:.3f} ({r['e_rel']:.3f}) | {r['output_change']:.3f} | "
            f"{r['ratio']:.2f} | {r['change_at_0.01']:.2f} | {r['change_at_0.05']:.2f} | "
            f"{r['psnr_worst']:.2f} | {r['ssim_worst']:.3f} | "
            f"{r['psnr_other_worst']:.2f} | {r['psnr_random_same_norm']:.2f} |"
        )
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
        "| K | n | ‖A_n − A‖ | d(LISTA, Ξ(A,y)) | d(FIRENET, Ξ(A,y)) | 10^-K | "
        "FIRENET to own minimiser | LISTA train rel. error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['K']} | {r['n']} | {r['A_diff']:.1e} | {r['dist_LISTA']:.7f} | "
            f"{r['dist_FIRENET']:.7f} | 1e-{r['K']} | {r['dist_FIRENET_to_own_minimiser']:.1e} | "
            f"{r['LISTA_train_rel_error']:.1e} |"
        )
    report.extend([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a couple of minutes")
    parser.add_argument(
        "--only", nargs="*", default=None, choices=["convergence", "layers", "stability", "table1"]
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
    (out / "timings.json").write_text(json.dumps(timings, indent=1))


if __name__ == "__main__":
    main()
