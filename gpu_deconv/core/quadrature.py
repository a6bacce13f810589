"""Quadrature rules over the frequency domain, for the least-squares fits and the band-energy model.

A fit integrates smooth products of cosine sums over ``[0, pi]`` (1D) or ``[0, pi]^2`` (2D; every
response here is even in each axis, so the quarter domain is the whole story). Gauss-Legendre with
n nodes integrates polynomials of degree 2n - 1 exactly, and the integrands are entire functions, so
8-16 nodes per axis reproduce a dense integral to ~1e-4 where a uniform 512-point grid (the seed
post's ``freqz`` sampling) is still off by ~5e-2.

All weights are normalised to sum to 1, so a weighted sum is the *mean* over the domain:
``sum(q * f) ~= (1/pi^d) * integral f``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True, eq=False)
class Nodes:
    """Quadrature nodes over the frequency domain.

    Attributes
    ----------
    kind : {'1d', '2d'}
    axis : ndarray (n,)
        The distinct 1D node positions in rad/pixel (2D nodes are their tensor product).
    wx, wy : ndarray (N,)
        Node coordinates (``wy`` is zero in 1D).
    q : ndarray (N,)
        Weights summing to 1.
    r2 : ndarray (N,)
        ``wx^2 + wy^2`` (the natural-image prior's |w|^2; in 1D just wx^2).
    label : str
    ix, iy : ndarray (N,) of int
        Indices into ``axis`` of each node's ``wx`` and ``wy`` (``iy`` is -1 in 1D): a separable response
        at the nodes is ``b[ix] * b[iy]`` from its 1D values ``b`` on the axis.
    """

    kind: str
    axis: np.ndarray
    wx: np.ndarray
    wy: np.ndarray
    q: np.ndarray
    r2: np.ndarray
    label: str
    ix: np.ndarray
    iy: np.ndarray

    @property
    def size(self) -> int:
        return self.q.size


def _freeze(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def _build(kind: str, axis: np.ndarray, q1: np.ndarray, label: str) -> Nodes:
    n = axis.size
    if kind == "1d":
        ix, iy = np.arange(n), np.full(n, -1)
        wx, wy, q = axis.copy(), np.zeros_like(axis), q1.copy()
    elif kind == "2d":
        iy, ix = (i.ravel() for i in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
        wx, wy = axis[ix], axis[iy]
        q = np.outer(q1, q1).ravel()
    else:
        raise ValueError(f"domain must be '1d' or '2d', got {kind!r}")
    r2 = wx * wx + wy * wy
    _freeze(axis, wx, wy, q, r2, ix, iy)
    return Nodes(kind, axis, wx, wy, q, r2, label, ix, iy)


def symmetric_half(nodes: Nodes) -> Nodes:
    """A 2D tensor rule folded onto ``wy <= wx``: the nodes with ``iy <= ix``, off-diagonal weights doubled.

    For an integrand symmetric under swapping the axes, ``f(wx, wy) = f(wy, wx)``, this is the same
    quadrature (the same sum, grouped in pairs) at ``n(n+1)/2`` instead of ``n^2`` nodes. Everything the
    fits integrate is symmetric: separable blurs and bases use one 1D response on both axes, and the
    spectrum depends on ``|w|^2``.

    Raises
    ------
    ValueError
        ``nodes`` is not a full 2D tensor rule.
    """
    n = nodes.axis.size
    if nodes.kind != "2d" or nodes.size != n * n:
        raise ValueError(f"symmetric_half needs a full 2D tensor rule, got {nodes.kind} with {nodes.size} nodes")
    keep = nodes.iy <= nodes.ix
    q = np.where(nodes.iy == nodes.ix, nodes.q, 2.0 * nodes.q)[keep]
    fields = [a[keep] for a in (nodes.wx, nodes.wy)]
    ix, iy = nodes.ix[keep], nodes.iy[keep]
    r2 = nodes.r2[keep]
    _freeze(*fields, q, r2, ix, iy)
    return Nodes("2d", nodes.axis, *fields, q, r2, f"{nodes.label} folded", ix, iy)


@lru_cache(maxsize=64)
def gauss_legendre(kind: str = "2d", n: int = 16) -> Nodes:
    """Gauss-Legendre nodes on ``[0, pi]`` (1D) or the tensor rule on ``[0, pi]^2`` (2D), n per axis."""
    if int(n) != n or n < 2:
        raise ValueError(f"quadrature needs an integer n >= 2 nodes per axis, got {n!r}")
    x, w = np.polynomial.legendre.leggauss(int(n))
    axis = (x + 1.0) * (np.pi / 2.0)
    return _build(kind, axis, w / w.sum(), f"gauss-legendre {n}" + (f"x{n}" if kind == "2d" else ""))


@lru_cache(maxsize=16)
def uniform_grid(kind: str = "1d", n: int = 512) -> Nodes:
    """The seed's dense sampling: ``w_i = pi * i / n``, i = 0..n-1 (``scipy.signal.freqz`` default grid)."""
    if int(n) != n or n < 2:
        raise ValueError(f"grid needs an integer n >= 2 points per axis, got {n!r}")
    axis = np.pi * np.arange(int(n)) / n
    return _build(kind, axis, np.full(int(n), 1.0 / n), f"uniform {n}" + (f"x{n}" if kind == "2d" else ""))
