"""Offscreen batch processing: files, folders (recursive, mirrored) and videos through one GL context.

Data safety rules (each tested in tests/test_cli.py):

* an input is never written: an output path that resolves to an input is an error;
* an existing output is never replaced without ``overwrite``;
* every output is written to a temp file in its target folder and renamed into place, so Ctrl-C or a
  crash leaves no partial file (see :func:`gpu_deconv.io.images.atomic_write` and ``VideoWriter``);
* one bad file is reported on one line and the batch goes on; the caller exits non-zero if any failed.

Pipelining: while the GPU works on file n, a worker thread decodes file n+1 and another encodes file
n-1; for video, frames are decoded ahead and encoded behind on their own threads
(:func:`gpu_deconv.io.video.transcode`).

Videos (:meth:`BatchRunner._run_video`) keep a video output whatever ``--format`` says (the user is told
once); their container, codec and pixel format follow the input unless :class:`~gpu_deconv.io.video.VideoOptions`
say otherwise. A truncated or corrupt video is written with the frames that decoded and counted both as
failed (exit code 1) and as ``partial`` in the :class:`BatchReport`, with a one-line warning.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..core.colour import linear_to_srgb, srgb_to_linear
from ..core.params import DeconvParams
from ..errors import ImageError, VideoError, one_line
from .images import EXTENSIONS, Image, check_not_same_file, read_image, write_image
from .video import REWRAPPED, PixelFormat, VideoOptions, is_video_path, output_extension

#: Canonical file extension written for each format (when ``--format`` changes it).
FORMAT_EXT = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp", "npy": ".npy"}
#: Formats that store float samples.
FLOAT_FORMATS = ("tiff", "npy")


@dataclass
class Job:
    """One input file and where its output goes."""

    src: Path
    dst: Path
    video: bool = False


@dataclass
class BatchReport:
    """What happened in a run."""

    ok: int = 0
    failed: int = 0
    #: Of ``failed``: damaged videos whose decodable frames were written (the output exists).
    partial: int = 0
    frames: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "upload", "gpu", "download", "encode"), 0.0))

    def summary(self) -> str:
        total = self.ok + self.failed
        rate = total / self.seconds if self.seconds > 0 else 0.0
        partial = f" ({self.partial} partly written)" if self.partial else ""
        line = f"{self.ok} ok, {self.failed} failed{partial} of {total} file(s)"
        if self.frames:
            line += f", {self.frames} video frame(s) ({self.frames / max(self.seconds, 1e-9):.1f} fps)"
        return f"{line}; {self.seconds:.2f} s, {rate:.2f} files/s"


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS or is_video_path(path)


def _output_name(rel: Path, suffix: str, fmt: str | None) -> Path:
    ext = FORMAT_EXT[fmt] if fmt else rel.suffix
    return rel.with_name(rel.stem + suffix + ext)


def _video_output_name(rel: Path, suffix: str, container: str | None) -> Path:
    return rel.with_name(rel.stem + suffix + output_extension(rel, container))


def plan_jobs(
    inputs: Iterable[str | os.PathLike[str]], output: str | os.PathLike[str], suffix: str = "",
    fmt: str | None = None, container: str | None = None,
) -> tuple[list[Job], list[str]]:
    """Map inputs to outputs.

    A single input file with an output path that is not an existing folder and has an extension is
    written to exactly that path; otherwise ``output`` is a folder, files go in at top level and folders
    are walked recursively and mirrored under it. ``fmt`` (``--format``) names the image outputs' format;
    videos keep a video container: ``container`` (``--container``), else
    :func:`~gpu_deconv.io.video.output_extension`. Returns ``(jobs, errors)``; errors are one-line
    messages for inputs that cannot be used (missing path, empty folder).
    """
    inputs = [Path(p) for p in inputs]
    out = Path(output)
    jobs: list[Job] = []
    errors: list[str] = []
    single_file = (len(inputs) == 1 and inputs[0].is_file() and out.suffix != "" and not out.is_dir())
    if single_file:
        return [Job(inputs[0], out, is_video_path(inputs[0]))], errors
    out_abs = out.resolve()
    for src in inputs:
        if not src.exists():
            errors.append(f"{src}: no such file or folder")
        elif src.is_dir():
            found = []
            for root, dirs, files in os.walk(src):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(root, d).resolve() != out_abs)
                for name in sorted(files):
                    p = Path(root, name)
                    if not name.startswith(".") and is_supported(p):
                        found.append(p)
            if not found:
                errors.append(f"{src}: folder holds no supported images or videos")
            for p in found:
                rel = p.relative_to(src)
                video = is_video_path(p)
                name = _video_output_name(rel, suffix, container) if video else _output_name(rel, suffix, fmt)
                jobs.append(Job(p, out / name, video))
        else:
            video = is_video_path(src)
            rel = Path(src.name)
            name = _video_output_name(rel, suffix, container) if video else _output_name(rel, suffix, fmt)
            jobs.append(Job(src, out / name, video))
    return jobs, errors


def convert_for_format(pixels: np.ndarray, fmt: str, space: str) -> np.ndarray:
    """Make processed pixels storable in ``fmt`` when ``--format`` changed the format.

    Float (linear) into an integer format is sRGB-encoded (16-bit for PNG/TIFF, else 8-bit); integer
    (sRGB) into ``.npy`` is decoded to linear float32 (unless ``space`` says the codes are linear).
    """
    if pixels.dtype == np.float32 and fmt not in FLOAT_FORMATS:
        enc = linear_to_srgb(pixels) if space != "srgb" else pixels
        if fmt == "png":
            return np.clip(np.rint(enc * 65535.0), 0, 65535).astype(np.uint16)
        return np.clip(np.rint(enc * 255.0), 0, 255).astype(np.uint8)
    if pixels.dtype != np.float32 and fmt == "npy":
        scale = np.float32(np.iinfo(pixels.dtype).max)
        v = pixels.astype(np.float32) / scale
        return v if space == "linear" else srgb_to_linear(v)
    return pixels


class BatchRunner:
    """Runs jobs through one :class:`~gpu_deconv.gl.engine.Deconvolver`.

    Parameters
    ----------
    deconvolver : Deconvolver
        Its context is used for the whole run; textures are reused across same-size frames.
    params : DeconvParams
    overwrite : bool
    fmt : str or None
        Output format override.
    tile : int or None
        Force tiled processing (tile edge in pixels).
    progress : bool or None
        tqdm bars on stderr; None = only when stderr is a terminal.
    debug : bool
        Print tracebacks of failures.
    log : callable
        Where one-line messages go (default: stderr, through tqdm).
    video_options : VideoOptions, optional
        How video outputs are encoded (``--codec``, ``--crf``... :func:`gpu_deconv.io.video.add_video_arguments`).
    """

    def __init__(self, deconvolver, params: DeconvParams, *, overwrite: bool = False, fmt: str | None = None,
                 tile: int | None = None, progress: bool | None = None, debug: bool = False,
                 log: Callable[[str], None] | None = None, video_options: VideoOptions | None = None) -> None:
        self.d = deconvolver
        self.params = params
        self.overwrite = overwrite
        self.fmt = fmt
        self.video_options = video_options or VideoOptions()
        self.tile = tile
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.debug = debug
        self.log = log or (lambda m: tqdm.write(m, file=sys.stderr))
        self.d.set_params(params)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _fail(self, report: BatchReport, msg: str) -> None:
        report.failed += 1
        report.errors.append(msg)
        self.log(f"gpu-deconv: error: {msg}")
        if self.debug:
            self.log(traceback.format_exc().rstrip())

    def _space(self, img: Image) -> str:
        return self.params.space

    def _check_target(self, job: Job, sources: set[Path], claimed: set[Path]) -> None:
        dst = job.dst
        res = dst.resolve()
        if res in sources:
            raise ImageError(dst, "output would overwrite an input file; choose another -o or --suffix")
        check_not_same_file(job.src, dst)
        if res in claimed:
            raise ImageError(dst, "two inputs map to this output; use --suffix or separate runs")
        if dst.exists() and not self.overwrite:
            raise ImageError(dst, "output exists; pass --overwrite to replace it")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ImageError(dst.parent, f"cannot create output folder: {e.strerror or e}") from None
        if not os.access(dst.parent, os.W_OK):
            raise ImageError(dst.parent, "output folder is not writable")
        claimed.add(res)

    def process_pixels(self, pixels: np.ndarray, bits: int | None, space: str) -> np.ndarray:
        out = self.d.process(pixels, space=space, bits=bits, tile=self.tile)
        return out

    # -- images -------------------------------------------------------------------------------------------------
    def run(self, jobs: list[Job], report: BatchReport | None = None) -> BatchReport:
        report = report or BatchReport()
        t0 = time.perf_counter()
        sources = {j.src.resolve() for j in jobs}
        claimed: set[Path] = set()
        bar = tqdm(total=len(jobs), unit="file", file=sys.stderr, disable=not self.progress, leave=False)
        with ThreadPoolExecutor(1, thread_name_prefix="decode") as dec, \
                ThreadPoolExecutor(1, thread_name_prefix="encode") as enc:
            pending_write: list[tuple[Job, Future]] = []
            images = [j for j in jobs if not j.video]
            videos = [j for j in jobs if j.video]
            reads = self._prefetch(dec, images)
            for job, fut in reads:
                try:
                    self._check_target(job, sources, claimed)
                    t = time.perf_counter()
                    img = fut.result()
                    report.stage_ms["decode"] += (time.perf_counter() - t) * 1e3
                    space = self._space(img)
                    bits = img.bits if img.pixels.dtype != np.float32 else None
                    out = self.process_pixels(img.pixels, bits, space)
                    self._add_engine_timings(report)
                    fmt = self.fmt or img.format
                    out = convert_for_format(out, fmt, space)
                    pending_write.append((job, enc.submit(self._write, job, out, img, fmt)))
                except (ImageError, ValueError, OSError) as e:
                    self._fail(report, one_line(e, job.src))
                    bar.update(1)
                    continue
                self._drain(pending_write, report, bar, block=False)
            self._drain(pending_write, report, bar, block=True)
            if videos and self.fmt:
                self.log(f"gpu-deconv: note: --format {self.fmt} applies to images; videos keep a video container "
                         "(--container chooses it)")
            for job in videos:
                try:
                    self._check_target(job, sources, claimed)
                    self._run_video(job, report)
                except (VideoError, ImageError, ValueError, OSError) as e:
                    self._fail(report, one_line(e, job.src))
                bar.update(1)
        bar.close()
        report.seconds += time.perf_counter() - t0
        return report

    def _prefetch(self, pool: ThreadPoolExecutor, jobs: list[Job]) -> Iterator[tuple[Job, Future]]:
        """Yield (job, future of its decoded image), keeping one decode ahead of the consumer."""
        futs: list[tuple[Job, Future]] = []
        for job in jobs:
            futs.append((job, pool.submit(read_image, job.src)))
            if len(futs) > 1:
                yield futs.pop(0)
        yield from futs

    def _write(self, job: Job, out: np.ndarray, img: Image, fmt: str) -> float:
        t = time.perf_counter()
        write_image(job.dst, out, fmt, like=img if fmt == img.format else None, overwrite=self.overwrite)
        return (time.perf_counter() - t) * 1e3

    def _drain(self, pending: list[tuple[Job, Future]], report: BatchReport, bar, block: bool) -> None:
        while pending and (block or pending[0][1].done()):
            job, fut = pending.pop(0)
            try:
                report.stage_ms["encode"] += fut.result()
                report.ok += 1
            except (ImageError, ValueError, OSError) as e:
                self._fail(report, one_line(e, job.dst))
            bar.update(1)

    def _add_engine_timings(self, report: BatchReport) -> None:
        t = getattr(self.d, "timings", None) or {}
        for k in ("upload", "gpu", "download"):
            report.stage_ms[k] += float(t.get(k, 0.0) or 0.0)

    # -- video --------------------------------------------------------------------------------------------------
    def _run_video(self, job: Job, report: BatchReport) -> None:
        """Deblur one video into ``job.dst`` (:func:`gpu_deconv.io.video.transcode`) and count it in ``report``."""
        from .video import transcode

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
            out = self.process_pixels(pixels, fmt.bits, space)
            self._add_engine_timings(report)
            wait["t"] = time.perf_counter()
            return out

        bar = tqdm(total=None, unit="frame", file=sys.stderr, disable=not self.progress, leave=False,
                   desc=job.src.name)

        def frame_done(_frame) -> None:
            t = time.perf_counter()
            report.stage_ms["encode"] += (t - wait["t"]) * 1e3  # handing the frame to the encoder thread
            wait["t"] = t
            bar.update(1)

        try:
            result = transcode(job.src, job.dst, process, options=self.video_options, overwrite=self.overwrite,
                               channels="auto", on_note=note, on_frame=frame_done)
        finally:
            bar.close()
        report.frames += result.frames
        if result.damage is None:
            report.ok += 1
            return
        report.failed += 1
        report.partial += 1
        msg = f"{result.damage}; the {result.frames} frame(s) that decoded were written to {job.dst}"
        report.errors.append(msg)
        self.log(f"gpu-deconv: warning: {msg}")
