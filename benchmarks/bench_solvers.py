"""Per-frame solver cost: microseconds per solve (target evaluation included) for each basis x domain,
Gauss-Legendre quadrature vs the seed's dense 512-point grid, with the fit errors against a dense exact
integral. Run: ``python benchmarks/bench_solvers.py [--repeat N]``.

Goals on a 2-core machine: <= 10 us comb (1D), <= 20 us 5x5 (1D), 2D fit <= 50 us.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.fit import LaplacianFit
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.quadrature import uniform_grid
from gpu_deconv.core.targets import wiener_natural

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine_line, update_section  # noqa: E402


def per_call_us(fn, repeat: int) -> float:
    fn()
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--no-write", action="store_true", help="print only, don't update RESULTS.md")
    args = ap.parse_args()
    rows = []
    sigma, noise, level = 0.8, 0.01, 2e-3
    blur = Gaussian(sigma)
    print(f"# bench_solvers  {platform.node()}  {platform.processor() or platform.machine()}  "
          f"python {platform.python_version()}  numpy {np.__version__}")
    print(f"# case: Gaussian blur sigma={sigma}, noise={noise}, natural target level={level}; "
          "errors vs a 600 (1D) / 160x160 (2D) node solve")
    print(f"{'basis':<12}{'domain':<8}{'solver':<22}{'nodes':>7}{'us/solve':>10}{'coef rel err':>14}"
          f"{'fit err rel':>13}")
    for basis in (Comb(2), Comb(3), GaussianLaplacian()):
        for domain in ("1d", "2d"):
            exact_solver = LaplacianFit(basis, domain, 600 if domain == "1d" else 160)

            def target_fn(sigma_=sigma):  # a fresh blur + target per frame, as the render loop does
                return Gaussian(sigma_), wiener_natural(noise**2, level)

            exact = exact_solver.solve(blur, wiener_natural(noise**2, level))
            for label, solver in (
                ("gauss-legendre", LaplacianFit(basis, domain)),
                ("dense-512" if domain == "1d" else "dense-64x64",
                 LaplacianFit(basis, domain, uniform_grid(domain, 512 if domain == "1d" else 64))),
            ):
                def frame(solver=solver, target_fn=target_fn):
                    b, t = target_fn()
                    return solver.solve(b, t).coefficients

                us = per_call_us(frame, args.repeat if solver.nodes.size < 5000 else max(args.repeat // 20, 20))
                c = frame()
                err = np.abs(c - exact.coefficients).max() / np.abs(exact.coefficients).max()
                f = 1 + exact_solver._phi @ c
                fe = exact_solver.nodes.q @ (exact._w * (f - exact._t) ** 2) / exact.excess_error - 1
                name = f"{basis.name}{basis.size}"
                print(f"{name:<12}{domain:<8}{label:<22}{solver.nodes.size:>7}{us:>10.1f}{err:>14.1e}{fe:>13.1e}")
                rows.append(f"| {name} | {domain} | {label} | {solver.nodes.size} | {us:.1f} | {err:.1e} | {fe:.1e} |")
    goals = {"comb2 1d": 10.0, "laplacian5 1d": 20.0}
    md = [f"Machine: {machine_line()}", "",
          f"Per-frame solve (a fresh Gaussian blur and natural target each call, so target evaluation is "
          f"included): sigma={sigma}, noise={noise}, level={level}, output-error weighting, gain clamp on. "
          "Best of 5 runs. Errors are against a 600-node (1D) / 160x160 (2D) solve; 'fit err rel' is the "
          "excess error of the coefficients, measured exactly, relative to the optimum.", "",
          "| basis | domain | solver | nodes | us/solve | coef rel err | fit err rel |",
          "|---|---|---|---|---|---|---|",
          *rows, "",
          f"Goals: <= {goals['comb2 1d']:.0f} us comb (1D), <= {goals['laplacian5 1d']:.0f} us 5x5 (1D), "
          "<= 50 us for the 2D fits. The 2D goal is met; the 1D goals are missed by ~2x: the cost is "
          "numpy call overhead (~15 array operations of ~1 us each: blur response, target, rounded gain "
          "clamp, Gram, solve), not arithmetic - the node count barely matters (64 or 576 nodes cost "
          "about the same)."]
    if not args.no_write:
        update_section("solvers", "## Solver cost (benchmarks/bench_solvers.py)\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
