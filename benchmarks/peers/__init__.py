"""Peer methods for gpu_deconv's benchmarks: single-pass GPU sharpeners (CAS- and RCAS-style)."""

from .sharpeners import KINDS, Sharpener, apply_reference, cas_peak, cas_reference, rcas_reference, tune

__all__ = ["KINDS", "Sharpener", "apply_reference", "cas_peak", "cas_reference", "rcas_reference", "tune"]
