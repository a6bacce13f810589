"""Per-frame solver cost: microseconds per solve (target evaluation included) for each basis x domain,
Gauss-Legendre quadrature vs the seed's dense 512-point grid, with the fit errors against a dense exact
integral; and the cost of a 32-entry coefficient table (one batched solve over 32 spectrum levels, what the
locally adaptive filter needs per frame). Run: ``python benchmarks/bench_solvers.py [--repeat N] [--quick]``.

Goals on a 2-core machine (issue #15): <= 10 us comb (1D), <= 20 us 5x5 (1D), <= 25 us for the 2D fits,
<= 0.5 ms for a 32-entry table.
"""

from __future__ import annotations

import argparse
import os
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


def per_call_us(fn, repeat: int, chunk: int = 10) -> float:
    """Best time per call over ``repeat`` calls timed in chunks of ``chunk``: on a shared machine a short
    chunk often runs undisturbed, so the minimum approaches the uncontended cost."""
    fn()
    best = np.inf
    for _ in range(max(repeat // chunk, 5)):
        t0 = time.perf_counter()
        for _ in range(chunk):
            fn()
        best = min(best, (time.perf_counter() - t0) / chunk)
    return best * 1e6


GOALS_US = {("comb", "1d"): 10.0, ("laplacian", "1d"): 20.0, ("comb", "2d"): 25.0, ("laplacian", "2d"): 25.0}
TABLE_GOAL_MS = 0.5
TABLE_SIZE = 32


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 repeats, never writes RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only, don't update RESULTS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.no_write = 20, True
    timings: dict[str, float] = {}
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
                goal = GOALS_US[basis.name, domain] if label == "gauss-legendre" else None
                verdict = "" if goal is None else f"<= {goal:g} {'met' if us <= goal else 'MISSED'}"
                timings[f"{name} {domain} {label}"] = us
                print(f"{name:<12}{domain:<8}{label:<22}{solver.nodes.size:>7}{us:>10.1f}{err:>14.1e}{fe:>13.1e}"
                      f"  {verdict}")
                rows.append(f"| {name} | {domain} | {label} | {solver.nodes.size} | {us:.1f} | {err:.1e} | {fe:.1e} "
                            f"| {verdict} |")
    levels = np.geomspace(1e-5, 1e-1, TABLE_SIZE)
    table_rows = []
    print(f"# {TABLE_SIZE}-entry tables (one solve_many over spectrum levels {levels[0]:g}..{levels[-1]:g})")
    for basis in (Comb(2), Comb(3), GaussianLaplacian()):
        for domain in ("1d", "2d"):
            solver = LaplacianFit(basis, domain)

            def table(solver=solver):
                return solver.solve_many(Gaussian(sigma), [wiener_natural(noise**2, a) for a in levels])

            ms = per_call_us(table, max(args.repeat // 20, 5), chunk=1) / 1e3
            name = f"{basis.name}{basis.size}"
            verdict = f"<= {TABLE_GOAL_MS:g} {'met' if ms <= TABLE_GOAL_MS else 'MISSED'}"
            timings[f"{name} {domain} table"] = ms * 1e3
            print(f"{name:<12}{domain:<8}{'table-' + str(TABLE_SIZE):<22}{solver.nodes.size:>7}{ms * 1e3:>10.1f}"
                  f"{'':>27}  {verdict} ms")
            table_rows.append(f"| {name} | {domain} | {ms:.3f} | {ms * 1e3 / TABLE_SIZE:.1f} | {verdict} |")
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"
    md = [f"Machine: {machine_line()}; 1-min load average {load} at the end of the run.", "",
          f"Per-frame solve (a fresh Gaussian blur and natural target each call, so target evaluation is "
          f"included): sigma={sigma}, noise={noise}, level={level}, output-error weighting, gain clamp on. "
          "Best chunk of 10 calls. Errors are against a 600-node (1D) / 160x160 (2D) solve; 'fit err rel' is the "
          "excess error of the coefficients, measured exactly, relative to the optimum.", "",
          "| basis | domain | solver | nodes | us/solve | coef rel err | fit err rel | goal (us) |",
          "|---|---|---|---|---|---|---|---|",
          *rows, "",
          f"{TABLE_SIZE}-entry coefficient tables: one `LaplacianFit.solve_many` over {TABLE_SIZE} targets "
          f"(levels {levels[0]:g}..{levels[-1]:g}, targets built per call), best single call.", "",
          "| basis | domain | ms/table | us/entry | goal (ms) |", "|---|---|---|---|---|", *table_rows, "",
          "A solve is 11 small array operations and a KxK solve: per blur (cached per sigma) the solver "
          "tabulates B^2 s0, B s0 and three KxK Gram matrices, so a frame's G is their combination with the "
          "target's one number noise_var / level, and its right-hand side is the clamped target (9 operations, "
          "`targets.clamped_excess`) times one table; closed form for K <= 2, LAPACK gesv beyond. numpy call "
          "overhead, not arithmetic, is the cost, so the node count barely matters; the blur and target "
          "construction (Gaussian(sigma), wiener_natural) are part of each timed frame. The 32-entry tables "
          "take the general path (any weights, (M, N) arrays). Wall-clock microseconds depend on the machine "
          "and its load; compare rows of one run."]
    if not args.no_write:
        update_section("solvers", "## Solver cost (benchmarks/bench_solvers.py)\n\n" + "\n".join(md))
    return timings


if __name__ == "__main__":
    main()
