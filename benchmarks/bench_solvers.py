"""Per-frame solver cost: microseconds per solve (target evaluation included) for each basis x domain,
Gauss-Legendre quadrature vs the seed's dense 512-point grid, with the fit errors against a dense exact
integral. Run: ``python benchmarks/bench_solvers.py [--repeat N]``.

Goals on a 2-core machine: <= 10 us comb (1D), <= 20 us 5x5 (1D), 2D fit <= 50 us.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from gpu_deconv.blur import Gaussian
from gpu_deconv.comb import Comb
from gpu_deconv.fit import LaplacianFit
from gpu_deconv.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.quadrature import uniform_grid
from gpu_deconv.targets import wiener_natural


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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
