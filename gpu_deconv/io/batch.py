"""Offscreen batch processing: files, folders (recursive, mirrored) and videos through one GL context.

Data safety rules (each tested in tests/test_cli.py and tests/test_batch.py):

* an input is never written: an output path that resolves to an input is an error;
* an existing output is never replaced without ``overwrite`` (with ``skip_existing`` it is kept quietly:
  a rerun resumes where the last one stopped);
* every output is written to a temp file in its target folder and renamed into place, so Ctrl-C, SIGTERM
  or a crash leaves no partial file (:mod:`gpu_deconv.io.atomic`);
* one bad file is reported on one line and the batch goes on; the caller exits non-zero if any failed;
* an output whose samples are not finite is an error, never written.

Inputs: files and folders, walked recursively without following directory links (a link loop cannot
trap the walk; a file that cannot be resolved is one failed entry, not an aborted batch), hidden entries
and the output folder skipped, and - when ``suffix`` is set - our own earlier outputs (``a_deblur.png``
next to ``a.png``) skipped too, so a rerun in place does not make ``a_deblur_deblur.png``.

Pipelining: while the GPU works on file n, a worker thread decodes file n+1 and another encodes file
n-1; for video, frames are decoded ahead and encoded behind on their own threads
(:func:`gpu_deconv.io.video.transcode`).

Videos (:meth:`BatchRunner._run_video`) keep a video output whatever ``--format`` says; their container, codec
and pixel format follow the input unless :class:`~gpu_deconv.io.video.VideoOptions` say otherwise, and the
per-frame statistics are smoothed over time (reset at scene cuts, :mod:`gpu_deconv.core.temporal`). A truncated
or corrupt video is written with the frames that decoded and reported as failed (exit code 1) and ``partial``,
with a one-line warning.

The :class:`BatchReport` keeps one :class:`FileResult` per input (status, reason, the sigma, noise, level
and method used, milliseconds), writes it as JSON or CSV (``--report``) and makes the summary line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.colour import linear_to_srgb, srgb_to_linear
from ..core.params import DeconvParams
from ..errors import FileError, ImageError, UsageError, one_line
from .atomic import write_text_atomic
from .images import (
    DEFAULT_EXTENSION,
    DEFAULT_MAX_PIXELS,
    EXTENSIONS,
    Image,
    check_not_same_file,
    read_image,
    rescale_bits,
    write_image,
)
from .video_options import REWRAPPED, VideoOptions, is_video_path, output_extension

#: Formats that store float samples.
FLOAT_FORMATS = ("tiff", "jxl", "npy")
#: Largest magnitude a float sample may have: fp16 intermediates hold at most 65504.
MAX_FLOAT_SAMPLE = 65504.0
#: Bit depths the engine decodes through its sRGB tables as they are (others are rescaled to 16 bits).
ENGINE_BITS = (8, 16)


@dataclass
class Job:
    """One input file and where its output goes."""

    src: Path
    dst: Path
    video: bool = False


@dataclass
class FileResult:
    """What happened to one input (one row of ``--report``).

    ``status`` is ``'ok'``, ``'failed'`` (with ``reason``; ``partial`` when a damaged video's decodable frames were
    written nevertheless) or ``'skipped'`` (the output existed and was kept). ``sigma`` (px, the one deconvolved
    with - a list [R, G, B] for a per-channel sigma; 0 when ``--sigma auto`` found nothing to restore),
    ``sigma_estimate`` (px, the blind estimate of ``--sigma auto``), ``noise`` (linear std, estimated or given),
    ``noise_total`` (the std the filter was designed for: ``noise`` with the input's quantization and, for a JPEG,
    compression noise), ``level`` and ``method`` are those of the design used (of the last frame, for a video);
    ``ms`` is the file's wall time in the engine and codecs.

    """

    input: str
    output: str | None
    status: str
    reason: str = ""
    sigma: float | list[float] | None = None
    sigma_estimate: float | None = None
    noise: float | None = None
    noise_total: float | None = None
    level: float | None = None
    method: str | None = None
    frames: int = 0
    partial: bool = False
    ms: float = 0.0


REPORT_FIELDS = tuple(FileResult.__dataclass_fields__)


@dataclass
class BatchReport:
    """Every input's :class:`FileResult`, plus totals and the time per pipeline stage."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "upload", "gpu", "download", "encode"), 0.0))

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> int:
        return self.count("ok")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def partial(self) -> int:
        """Of the failed: damaged videos whose decodable frames were written (the output exists)."""
        return sum(r.partial for r in self.results)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results)

    def summary(self, skip_existing: bool = False) -> str:
        total = len(self.results)
        rate = total / self.seconds if self.seconds > 0 else 0.0
        line = f"{self.ok} ok, {self.failed} failed" + (f" ({self.partial} partly written)" if self.partial else "")
        if self.skipped:
            line += f", {self.skipped} skipped (output exists{'' if skip_existing else ': --overwrite replaces'})"
        line += f" of {total} file(s)"
        if self.frames:
            line += f", {self.frames} video frame(s) ({self.frames / max(self.seconds, 1e-9):.1f} fps)"
        return f"{line}; {self.seconds:.2f} s, {rate:.2f} files/s"

    def to_text(self, fmt: str) -> str:
        """The per-file table as ``'json'`` (a list of objects) or ``'csv'`` (a header row, then one row a file)."""
        rows = [asdict(r) for r in self.results]
        if fmt == "json":
            return json.dumps({"summary": self.summary(), "files": rows}, indent=2) + "\n"
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=REPORT_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()

    def write(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the table atomically; the format follows the extension (``.json`` or ``.csv``)."""
        fmt = report_format(path)
        write_text_atomic(path, self.to_text(fmt), overwrite=overwrite)


def report_format(path: str | os.PathLike[str]) -> str:
    """``'json'`` or ``'csv'`` from a ``--report`` file name (a UsageError for anything else)."""
    ext = Path(path).suffix.lower()
    if ext not in (".json", ".csv"):
        raise UsageError(f"--report {path}: use a .json or .csv file name")
    return ext[1:]


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS or is_video_path(path)


def resolved(path: Path) -> Path | None:
    """``path`` with links resolved, or None when it cannot be (a link loop, a permission error)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _output_name(rel: Path, suffix: str, fmt: str | None, video: bool, container: str | None = None) -> Path:
    """Images take ``fmt``'s extension (else their own); videos keep a video container (:func:`output_extension`)."""
    if video:
        ext = output_extension(rel, container)
    else:
        ext = DEFAULT_EXTENSION[fmt] if fmt else rel.suffix
    return rel.with_name(rel.stem + suffix + ext)


def _is_own_output(path: Path, suffix: str) -> bool:
    """``a_deblur.png`` next to an ``a.*`` input: an earlier run's output, not an input."""
    if not suffix or not path.stem.endswith(suffix) or path.stem == suffix:
        return False
    stem = path.stem[: -len(suffix)]
    return any(p.stem == stem and is_supported(p) for p in path.parent.glob(f"{stem}.*"))


def plan_jobs(inputs: Iterable[str | os.PathLike[str]], output: str | os.PathLike[str], suffix: str = "",
              fmt: str | None = None, container: str | None = None) -> tuple[list[Job], list[FileResult], str | None]:
    """Map inputs to outputs.

    A single input file with an output path that is not an existing folder and has an extension is
    written to exactly that path, in the format that extension names (a conversion the returned note
    states); otherwise ``output`` is a folder: files go in at top level and folders are walked recursively
    and mirrored under it. ``fmt`` (``--format``) names the images' output format; videos keep a video
    container: ``container`` (``--container``), else :func:`~gpu_deconv.io.video.output_extension`.

    Returns
    -------
    (jobs, failures, note)
        ``failures`` are :class:`FileResult` rows for inputs that cannot be used (missing path, empty folder,
        unresolvable link); ``note`` is a line for the user or None.

    Raises
    ------
    UsageError
        An output file name (with an image or video extension) for several inputs or a folder.
    """
    inputs = [Path(p) for p in inputs]
    out = Path(output)
    jobs: list[Job] = []
    failures: list[FileResult] = []
    if out.suffix and not out.is_dir() and is_supported(out):
        if len(inputs) != 1 or not inputs[0].is_file():
            what = "a folder" if len(inputs) == 1 else f"{len(inputs)} inputs"
            raise UsageError(f"-o {out} names one file but the input is {what}; give an output folder")
        src = inputs[0]
        note = None
        want = EXTENSIONS.get(out.suffix.lower())
        have = EXTENSIONS.get(src.suffix.lower())
        if want and have and want != have and fmt is None and not is_video_path(src):
            note = f"{out}: writing {want.upper()} from a {have.upper()} input (the output's extension decides)"
        return [Job(src, out, is_video_path(src))], failures, note
    out_abs = resolved(out)
    for src in inputs:
        if not os.path.lexists(src):
            failures.append(FileResult(str(src), None, "failed", "no such file or folder"))
        elif src.is_dir():
            found, bad = _walk(src, out_abs, suffix)
            failures += bad
            if not found and not bad:
                failures.append(FileResult(str(src), None, "failed", "folder holds no supported images or videos"))
            for p in found:
                video = is_video_path(p)
                jobs.append(Job(p, out / _output_name(p.relative_to(src), suffix, fmt, video, container), video))
        else:
            video = is_video_path(src)
            jobs.append(Job(src, out / _output_name(Path(src.name), suffix, fmt, video, container), video))
    return jobs, failures, None


def _walk(top: Path, out_abs: Path | None, suffix: str) -> tuple[list[Path], list[FileResult]]:
    found: list[Path] = []
    bad: list[FileResult] = []
    for root, dirs, files in os.walk(top, followlinks=False):
        keep = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            r = resolved(Path(root, d))
            if r is not None and r != out_abs:
                keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            p = Path(root, name)
            if name.startswith(".") or not is_supported(p) or _is_own_output(p, suffix):
                continue
            if resolved(p) is None or not p.exists():
                bad.append(FileResult(str(p), None, "failed", "cannot be opened (a broken link or a link loop)"))
                continue
            found.append(p)
    return found, bad


def convert_for_format(pixels: np.ndarray, fmt: str, img: Image | None, space: str) -> np.ndarray:
    """Make processed pixels storable in ``fmt`` when the output format differs from the input's.

    Float (linear) into an integer format is encoded with the input's transfer curve (sRGB for float input)
    and quantized (16-bit for PNG/TIFF/JPEG XL/AVIF, else 8-bit); integer codes into ``.npy`` are decoded to
    linear float32 with the input's curve (unless ``space`` says the codes are linear).
    """
    colour = img.colour if img is not None and img.colour is not None else None
    if pixels.dtype == np.float32 and fmt not in FLOAT_FORMATS:
        enc = pixels if space == "srgb" else (colour.from_linear(pixels) if colour is not None
                                              else linear_to_srgb(pixels))
        if fmt in ("png", "tiff", "jxl", "avif"):
            return np.clip(np.rint(enc * 65535.0), 0, 65535).astype(np.uint16)
        return np.clip(np.rint(enc * 255.0), 0, 255).astype(np.uint8)
    if pixels.dtype != np.float32 and fmt == "npy":
        v = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
        if space == "linear":
            return v
        return colour.to_linear(v) if colour is not None else srgb_to_linear(v)
    return pixels


def check_samples(path: Path | str, pixels: np.ndarray, what: str) -> None:
    """A float image must be finite and within the fp16 range the passes hold (one-line ImageError)."""
    if pixels.dtype.kind != "f":
        return
    finite = np.isfinite(pixels)
    if not finite.all():
        raise ImageError(path, f"{what} holds {int((~finite).sum())} non-finite sample(s) (NaN or infinity)")
    peak = float(np.abs(pixels).max(initial=0.0))
    if peak > MAX_FLOAT_SAMPLE:
        raise ImageError(path, f"{what} holds a sample of magnitude {peak:.3g}; linear light must stay within "
                               f"+-{MAX_FLOAT_SAMPLE:g}")


class BatchRunner:
    """Runs jobs through one :class:`~gpu_deconv.gl.engine.Deconvolver`.

    Parameters
    ----------
    deconvolver : Deconvolver or None
        Its context is used for the whole run; textures are reused across same-size frames. None for a
        runner that only claims targets and records results (the driver of a distributed run).
    params : DeconvParams
    overwrite : bool
        Replace existing outputs.
    skip_existing : bool
        Keep existing outputs and move on (resume); counted as skipped, not as failures.
    fmt : str or None
        Output format for images (videos keep a video container).
    quality : int or None
        Quality of lossy outputs (JPEG, WebP); None keeps the input's character (lossy in, lossy out).
    tile : int or None
        Force tiled processing (tile edge in pixels).
    max_pixels : int or None
        Refuse images with more pixels (read from the header, before decoding); None: no limit.
    jpeg_noise : bool
        Add a JPEG input's compression noise (from its quantisation tables) to the noise model, so the
        8x8 block edges are not sharpened (:mod:`gpu_deconv.core.jpeg_noise`).
    video_options : VideoOptions, optional
        How video outputs are encoded (``--codec``, ``--crf``... :func:`gpu_deconv.io.video.add_video_arguments`).
    progress : bool or None
        tqdm bars on stderr; None = only when stderr is a terminal.
    verbose : bool
        One line per file (input, output, method, noise, ms).
    debug : bool
        Print tracebacks of failures.
    log : callable
        Where one-line messages go (default: stderr, through tqdm).
    """

    def __init__(self, deconvolver, params: DeconvParams, *, overwrite: bool = False, skip_existing: bool = False,
                 fmt: str | None = None, quality: int | None = None, tile: int | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, jpeg_noise: bool = True,
                 video_options: VideoOptions | None = None, progress: bool | None = None, verbose: bool = False,
                 debug: bool = False, log: Callable[[str], None] | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.d = deconvolver
        self.params = params
        self.overwrite = overwrite
        self.skip_existing = skip_existing and not overwrite
        self.fmt = fmt
        self.quality = quality
        self.tile = tile
        self.max_pixels = max_pixels
        self.jpeg_noise = jpeg_noise
        self.video_options = video_options or VideoOptions()
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.verbose = verbose
        self.debug = debug
        self.log = log or (lambda m: tqdm.write(m, file=sys.stderr))
        if deconvolver is not None:
            deconvolver.set_params(params)

    # -- results --------------------------------------------------------------------------------------------
    def _result(self, job: Job, status: str, reason: str = "", ms: float = 0.0, frames: int = 0) -> FileResult:
        d = getattr(self.d, "design", None) if status == "ok" else None
        est = None if d is None else d.blur_estimate
        sigma: float | list[float] | None = None
        if d is not None:
            per_channel = self.params.sigma_per_channel  # (the design carries the median channel's sigma)
            sigma = 0.0 if est is not None and d.method == "identity" else \
                ([float(v) for v in self.params.sigma] if per_channel else float(d.params.sigma))
        return FileResult(str(job.src), str(job.dst), status, reason, sigma=sigma,
                          sigma_estimate=None if est is None else round(float(est.sigma), 3),
                          noise=None if d is None else float(d.noise_std),
                          noise_total=None if d is None else float(np.sqrt(d.noise_var)),
                          level=None if d is None or d.level is None else float(d.level),
                          method=None if d is None else d.method, frames=frames, ms=round(ms, 2))

    def record(self, report: BatchReport, result: FileResult, bar) -> None:
        """Add ``result`` to the report, log it (failures, kept outputs; all with ``verbose``), step the bar."""
        report.results.append(result)
        if result.status == "failed":
            self.log(f"gpu-deconv: {'warning' if result.partial else 'error'}: {result.reason}")
            if self.debug and sys.exc_info()[0] is not None:
                self.log(traceback.format_exc().rstrip())
        elif result.status == "skipped" and not self.skip_existing:
            self.log(f"gpu-deconv: {result.output}: output exists; pass --overwrite to replace it "
                     f"(or --skip-existing to skip it quietly)")
        elif self.verbose:
            what = "kept (exists)" if result.status == "skipped" else (
                f"{result.method}, noise {result.noise:.4g}, {result.ms:.0f} ms" if result.method else "ok")
            self.log(f"gpu-deconv: {result.input} -> {result.output}: {what}")
        bar.update(1)

    def _fail(self, job: Job, e: BaseException, path: Path) -> FileResult:
        return self._result(job, "failed", one_line(e, path))

    def _check_target(self, job: Job, sources: set[Path], claimed: set[Path]) -> bool:
        """False when the output exists and is kept; raises FileError when it cannot be written."""
        dst = job.dst
        res = resolved(dst)
        if res is None:
            raise FileError(dst, "cannot be resolved (a link loop?)")
        if res in sources:
            raise FileError(dst, "output would overwrite an input file; choose another -o or --suffix")
        check_not_same_file(job.src, dst)
        if res in claimed:
            raise FileError(dst, "two inputs map to this output; use --suffix or separate runs")
        if os.path.lexists(dst) and not self.overwrite:
            return False
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FileError(dst.parent, f"cannot create output folder: {e.strerror or e}") from None
        if not os.access(dst.parent, os.W_OK):
            raise FileError(dst.parent, "output folder is not writable")
        claimed.add(res)
        return True

    def _add_engine_timings(self, report: BatchReport) -> None:
        t = getattr(self.d, "timings", None) or {}
        for k in ("upload", "gpu", "download"):
            report.stage_ms[k] += float(t.get(k, 0.0) or 0.0)

    # -- the run --------------------------------------------------------------------------------------------
    def run(self, jobs: list[Job], report: BatchReport | None = None) -> BatchReport:
        """Claim every job's output (:meth:`claim_targets`), then deblur the claimed ones (:meth:`process`)."""
        report = report or BatchReport()
        t0 = time.perf_counter()
        bar = self.progress_bar(len(jobs))
        try:
            self.process(self.claim_targets(jobs, report, bar), report, bar)
        finally:
            bar.close()
            report.seconds += time.perf_counter() - t0
        return report

    def progress_bar(self, total: int):
        """The run's tqdm bar on stderr (disabled unless ``progress``), one step per file."""
        return self._tqdm(total=total, unit="file", file=sys.stderr, disable=not self.progress, leave=False)

    def claim_targets(self, jobs: list[Job], report: BatchReport, bar) -> list[Job]:
        """Check every job's output against the data-safety rules; record the skipped and refused ones.

        Returns the jobs whose outputs may be written, in order. Needs no engine: a distributed driver
        (:mod:`gpu_deconv.apps.distributed`) claims here and its workers :meth:`process` what it hands them.
        """
        sources = {r for j in jobs if (r := resolved(j.src)) is not None}
        claimed: set[Path] = set()
        ready: list[Job] = []
        for job in jobs:
            try:
                if self._check_target(job, sources, claimed):
                    ready.append(job)
                else:
                    self.record(report, self._result(job, "skipped", "output exists"), bar)
            except (FileError, OSError) as e:
                self.record(report, self._fail(job, e, job.dst), bar)
        return ready

    def process(self, jobs: list[Job], report: BatchReport, bar) -> None:
        """Deblur jobs whose outputs were claimed: images pipelined, then videos, one result recorded each."""
        with ThreadPoolExecutor(1, thread_name_prefix="decode") as dec, \
                ThreadPoolExecutor(1, thread_name_prefix="encode") as enc:
            self._run_images(dec, enc, [j for j in jobs if not j.video], report, bar)
        for job in (j for j in jobs if j.video):
            t = time.perf_counter()
            try:
                frames, damage = self._run_video(job, report)
                ms = (time.perf_counter() - t) * 1e3
                if damage is None:
                    self.record(report, self._result(job, "ok", ms=ms, frames=frames), bar)
                else:  # written up to where the input stopped decoding
                    result = self._result(job, "failed", f"{damage}; the {frames} frame(s) that decoded were "
                                          f"written to {job.dst}", ms=ms, frames=frames)
                    result.partial = True
                    self.record(report, result, bar)
            except (FileError, ValueError, OSError) as e:
                self.record(report, self._fail(job, e, job.src), bar)

    def _run_images(self, dec: ThreadPoolExecutor, enc: ThreadPoolExecutor, jobs: list[Job], report: BatchReport,
                    bar) -> None:
        pending: list[tuple[Job, FileResult, Future]] = []
        for job, fut in self._prefetch(dec, jobs):
            t = time.perf_counter()
            try:
                img = fut.result()
                report.stage_ms["decode"] += (time.perf_counter() - t) * 1e3
                for w in img.warnings:
                    self.log(f"gpu-deconv: note: {job.src}: {w}")
                check_samples(job.src, img.pixels, "input")
                t_engine = time.perf_counter()
                out, bits = self._filter_image(img)
                self._add_engine_timings(report)
                check_samples(job.dst, out, "the filtered output")
                fmt = self.fmt or EXTENSIONS.get(job.dst.suffix.lower()) or img.format
                out = convert_for_format(out, fmt, img, self.params.space) if fmt != img.format else out
                ms = (time.perf_counter() - t_engine) * 1e3
                pending.append((job, self._result(job, "ok", ms=ms),
                                enc.submit(self._write, job, out, img, fmt, bits)))
            except (FileError, ValueError, OSError) as e:
                self.record(report, self._fail(job, e, job.src), bar)
            self._drain(pending, report, bar, block=False)
        self._drain(pending, report, bar, block=True)

    def _filter_image(self, img: Image) -> tuple[np.ndarray, int | None]:
        """The engine's output for one image, in the image's own coding, and the significant bits of its codes.

        sRGB-coded 8/16-bit codes go to the GPU as they are (decoded there through an exact table); 10/12-bit
        codes are rescaled to 16 bits for the GPU and back to their own depth after (exact both ways). Codes
        under another transfer curve (an Adobe RGB, ProPhoto, PQ or HLG file) are linearised here with the
        file's own curves, filtered as linear light and encoded back with them. The quantization noise of the
        file's real depth and, for a JPEG, its compression noise join the noise model.
        """
        px, space = img.pixels, self.params.space
        coded = px.dtype != np.float32 and space != "linear"
        extra = 0.0
        if self.jpeg_noise and img.jpeg is not None and coded:
            from ..core.jpeg_noise import jpeg_noise_rms

            extra = jpeg_noise_rms(img.jpeg, px, img.transfer)
        if px.dtype == np.float32:
            return self.d.process(px, space=space, bits=None, tile=self.tile), None
        if not coded or img.colour is None or img.colour.is_srgb:
            if img.bits in ENGINE_BITS:
                return self.d.process(px, space=space, bits=img.bits, tile=self.tile, extra_noise=extra), None
            out = self.d.process(rescale_bits(px, img.bits, 16), space=space, bits=img.bits, tile=self.tile,
                                 extra_noise=extra)
            return rescale_bits(out, 16, img.bits), img.bits  # back to the file's own depth
        top = np.float32((1 << img.bits) - 1)
        lin = img.colour.to_linear(px.astype(np.float32) / top)
        out = self.d.process(lin, space="linear", bits=img.bits, tile=self.tile, extra_noise=extra)
        codes = np.clip(np.rint(img.colour.from_linear(out) * top), 0, top).astype(px.dtype)
        return codes, None

    def _prefetch(self, pool: ThreadPoolExecutor, jobs: list[Job]) -> Iterator[tuple[Job, Future]]:
        """Yield (job, future of its decoded image), keeping one decode ahead of the consumer."""
        futs: list[tuple[Job, Future]] = []
        for job in jobs:
            futs.append((job, pool.submit(read_image, job.src, max_pixels=self.max_pixels)))
            if len(futs) > 1:
                yield futs.pop(0)
        yield from futs

    def _write(self, job: Job, out: np.ndarray, img: Image, fmt: str, bits: int | None) -> tuple[float, list[str]]:
        t = time.perf_counter()
        res = write_image(job.dst, out, fmt, like=img, overwrite=self.overwrite, quality=self.quality, bits=bits)
        return (time.perf_counter() - t) * 1e3, res.warnings

    def _drain(self, pending: list[tuple[Job, FileResult, Future]], report: BatchReport, bar, block: bool) -> None:
        while pending and (block or pending[0][2].done()):
            job, result, fut = pending.pop(0)
            try:
                ms, warnings = fut.result()
                for w in warnings:
                    self.log(f"gpu-deconv: note: {job.dst}: {w}")
                report.stage_ms["encode"] += ms
                result.ms = round(result.ms + ms, 2)
                self.record(report, result, bar)
            except (FileError, ValueError, OSError) as e:
                self.record(report, self._fail(job, e, job.dst), bar)

    # -- video ----------------------------------------------------------------------------------------------
    def _run_video(self, job: Job, report: BatchReport) -> tuple[int, str | None]:
        """Deblur one video into ``job.dst`` (:func:`gpu_deconv.io.video.transcode`); (frames, damage or None).

        The frames of one video are one scene sequence for the engine: their statistics are smoothed over time
        and reset at scene cuts (:class:`~gpu_deconv.core.temporal.TemporalSmoother`), so the filter does not
        flicker; the smoother is dropped afterwards, so the next file starts afresh.
        """
        from ..core.temporal import TemporalSmoother
        from .video import PixelFormat, transcode

        def note(msg: str) -> None:
            self.log(f"gpu-deconv: note: {job.src}: {msg}")

        src_ext, dst_ext = job.src.suffix.lower(), job.dst.suffix.lower()
        if src_ext in REWRAPPED and dst_ext != src_ext and self.video_options.container is None:
            note(f"written as {job.dst.name}: {dst_ext} keeps every stream and timestamp that {src_ext} can't "
                 f"(--container {src_ext[1:]} keeps {src_ext})")
        told: list[bool] = []
        wait = {"t": time.perf_counter()}

        def process(pixels: np.ndarray, fmt: PixelFormat) -> np.ndarray:
            space = self.params.space
            if fmt.transfer != "sdr" or space == "auto":
                if fmt.transfer != "sdr" and space != "auto" and not told:
                    told.append(True)
                    note(f"HDR ({fmt.transfer.upper()}) frames are decoded to linear light from their tags; "
                         f"--space {space} does not apply")
                space = fmt.space
            t = time.perf_counter()
            report.stage_ms["decode"] += (t - wait["t"]) * 1e3  # waiting for the decoder thread
            out = self.d.process(pixels, space=space, bits=fmt.bits, tile=self.tile)
            self._add_engine_timings(report)
            wait["t"] = time.perf_counter()
            return out

        bar = self._tqdm(total=None, unit="frame", file=sys.stderr, disable=not self.progress, leave=False,
                         desc=job.src.name)

        def frame_done(_frame) -> None:
            t = time.perf_counter()
            report.stage_ms["encode"] += (t - wait["t"]) * 1e3  # handing the frame to the encoder thread
            wait["t"] = t
            bar.update(1)

        previous, self.d.temporal = self.d.temporal, TemporalSmoother()
        try:
            result = transcode(job.src, job.dst, process, options=self.video_options, overwrite=self.overwrite,
                               channels="auto", on_note=note, on_frame=frame_done)
        finally:
            self.d.temporal = previous
            bar.close()
        return result.frames, result.damage
