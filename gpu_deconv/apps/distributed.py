"""Batch jobs on a Ray cluster: one worker per GPU (or per CPU slot), each holding one engine.

``gpu-deconv run ... --ray local|auto|ADDRESS`` and :func:`run` spread a batch over the GPUs of one box
or of a cluster. The driver (this process) does everything a local run does except the pixels:

* it plans exactly like the local batch (:func:`~gpu_deconv.io.batch.plan_jobs`) and checks every output
  with the same rules (:meth:`~gpu_deconv.io.batch.BatchRunner.claim_targets`: never onto an input, never
  over an existing output without ``overwrite``, ``skip_existing`` keeps it, two inputs to one output
  refused), so only claimed outputs reach a worker;
* it starts a pool of Ray actors (:class:`Worker`): one per GPU (``num_gpus=1``) when the cluster has
  GPUs, else one per CPU slot (``num_cpus=1``, Mesa llvmpipe told to use its share of the node's cores
  through ``LP_NUM_THREADS``). Each actor creates one headless EGL context once, on the EGL device of the
  CUDA device Ray gave it (:func:`choose_egl_device`), and one :class:`~gpu_deconv.gl.engine.Deconvolver`.
  ``LP_NUM_THREADS`` in the driver's environment overrides the share given to CPU-slot workers;
* images go out in small batches (a batch runs through the worker's decode/engine/encode pipeline, so the
  stages overlap as in a local run), a video as one task (its temporal state stays on one actor), videos
  first (the longest tasks start first); once every actor has started each has up to :data:`QUEUE_DEPTH`
  tasks queued, so it never waits for the driver;
* the worker reads the input and writes the output itself, atomically, to the shared output path: the
  output must be a path every node can write, the inputs paths every node can read (a shared or network
  file system mounted at the same place);
* results come back per file (the same :class:`~gpu_deconv.io.batch.FileResult` rows and log lines a local
  run makes) and the driver prints progress, the summary line and ``--report``; rows are put in job order
  (images, then videos), so a report holds the local run's rows with other timings;
* a worker that dies mid-file (a crash, a lost node, ``ray.kill``): its temp files are removed (each actor
  names them ``.gd-TAG-XXXX.tmp`` with its own tag, :func:`gpu_deconv.io.atomic.set_temp_tag`) and each file
  of its unfinished tasks is retried alone on another actor, at most ``max_retries`` times, then reported
  failed. An output the dead worker had already committed is whole (atomic rename) and is replaced by the
  retry, so each file's result is recorded once;
* Ctrl-C (or SIGTERM/SIGHUP through the CLI) kills the actors, waits until they are gone, removes their
  temp files and re-raises: the CLI exits with 130 (143, 129) and the finished outputs are whole.

Ray is optional (``pip install 'gpu_deconv[ray]'``) and imported only here, inside functions.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.params import DeconvParams
from ..errors import UsageError, one_line
from ..io.batch import BatchReport, BatchRunner, FileResult, Job, plan_jobs
from ..io.images import DEFAULT_MAX_PIXELS
from ..io.video_options import VideoOptions

#: Images per task: enough for the worker's decode/engine/encode pipeline to overlap (batches of 4 were never
#: slower than 2 or 1 in benchmarks/bench_distributed.py), few enough that files spread evenly and a dead
#: worker costs little to redo.
DEFAULT_BATCH = 4
#: Tasks queued on each actor, so it starts the next as soon as one ends (no round trip to the driver).
QUEUE_DEPTH = 2
#: Times a file is retried after the worker processing it died.
MAX_RETRIES = 2
#: Seconds to wait for the first worker to start (resources may be busy, a cluster may be scaling up).
START_TIMEOUT_S = 300.0
#: Seconds to wait for killed workers to be gone before their temp files are removed.
KILL_WAIT_S = 30.0
PROG = "gpu-deconv"


class ClusterError(RuntimeError):
    """Ray could not be reached, or no worker could start (the CLI prints it on one line, exit code 1)."""


# --- where a worker renders ------------------------------------------------------------------------------------
def choose_egl_device(gpu_ids: Sequence[int | str]) -> tuple[int | None, str]:
    """The EGL device index for a worker that Ray gave the GPUs ``gpu_ids``, and how it was chosen.

    Ray sets ``CUDA_VISIBLE_DEVICES`` to the ids it assigns (``ray.get_gpu_ids()``), which EGL ignores.
    The device whose ``EGL_CUDA_DEVICE_NV`` is the first id is chosen
    (:func:`~gpu_deconv.gl.context.egl_device_for_cuda`); without ``EGL_NV_device_cuda`` (Mesa, AMD, Intel)
    the EGL device with Ray's index, when there is one; otherwise (no GPU, or ids that are UUIDs rather
    than ordinals) None - the driver's default device.
    """
    from ..gl.context import egl_device_for_cuda, egl_devices

    if not gpu_ids:
        return None, "default EGL device (no GPU assigned)"
    gid = str(gpu_ids[0])
    if not gid.isdigit():
        return None, f"default EGL device (GPU id {gid} is not an ordinal)"
    cuda = int(gid)
    index = egl_device_for_cuda(cuda)
    if index is not None:
        return index, f"EGL device {index} = CUDA device {cuda} (EGL_NV_device_cuda)"
    n = len(egl_devices())
    if cuda < n:
        return cuda, f"EGL device {cuda} (Ray's GPU index; no EGL_NV_device_cuda)"
    return None, f"default EGL device (Ray's GPU index {cuda}, but {n} EGL device(s))"


# --- the worker (a Ray actor) ----------------------------------------------------------------------------------
@dataclass
class WorkerOptions:
    """What a worker's :class:`~gpu_deconv.io.batch.BatchRunner` needs besides the parameters."""

    fmt: str | None = None
    quality: int | None = None
    tile: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    jpeg_noise: bool = True
    video_options: VideoOptions | None = None
    verbose: bool = False
    debug: bool = False


@dataclass
class TaskResult:
    """What one task returns: a result per finished file, the worker's log lines (in order), the time per
    pipeline stage (ms), and - when the task stopped early on an unexpected error - that error."""

    results: list[FileResult]
    lines: list[str]
    stage_ms: dict[str, float]
    error: str | None = None


class Worker:
    """One engine on one device; run as a Ray actor (``ray.remote(Worker)``), one per GPU or CPU slot.

    Every GL call runs on one thread of its own (an EGL context is current on one thread; Ray does not
    promise which thread runs an actor's methods).

    Parameters
    ----------
    tag : str
        Names this process's temp files (``.gd-TAG-XXXX.tmp``) so the driver can remove them if it dies.
    params : DeconvParams
    options : WorkerOptions
    cwd : str
        The driver's working folder: relative input and output paths mean the same here when it exists.
    lp_threads : int or None
        ``LP_NUM_THREADS`` for Mesa llvmpipe (CPU slots share the node's cores); None leaves it.
    """

    def __init__(self, tag: str, params: DeconvParams, options: WorkerOptions, cwd: str,
                 lp_threads: int | None) -> None:
        from ..io.atomic import set_temp_tag

        if lp_threads is not None:  # read by llvmpipe when EGL first initialises, below
            os.environ["LP_NUM_THREADS"] = str(lp_threads)
        set_temp_tag(tag)
        self.same_cwd = os.path.isdir(cwd)
        if self.same_cwd:
            os.chdir(cwd)
        self._lines: list[str] = []
        self._gl = ThreadPoolExecutor(1, thread_name_prefix="gl")
        try:
            self.info = self._gl.submit(self._start, tag, params, options, lp_threads).result()
        except Exception as e:  # noqa: BLE001 - no GL here: said by describe(), in one line, to the driver
            self.info = {"tag": tag, "error": one_line(e)}

    def _start(self, tag: str, params: DeconvParams, options: WorkerOptions, lp_threads: int | None) -> dict:
        import platform

        import ray

        from ..gl.context import create_headless_context
        from ..gl.engine import Deconvolver

        gpu_ids = list(ray.get_gpu_ids())
        index, how = choose_egl_device(gpu_ids)
        self.ctx = create_headless_context(device_index=index)
        self.deconv = Deconvolver(self.ctx, params)
        self.runner = BatchRunner(self.deconv, params, fmt=options.fmt, quality=options.quality,
                                  tile=options.tile, max_pixels=options.max_pixels, jpeg_noise=options.jpeg_noise,
                                  video_options=options.video_options, progress=False, verbose=options.verbose,
                                  debug=options.debug, log=self._lines.append)
        return {"tag": tag, "node": platform.node(), "pid": os.getpid(), "gpu_ids": [str(g) for g in gpu_ids],
                "egl_device": index, "device_choice": how, "renderer": self.ctx.info.get("GL_RENDERER", "?"),
                "lp_threads": lp_threads, "same_cwd": self.same_cwd}

    def describe(self) -> dict:
        """Where this worker renders: node, pid, GPU ids, EGL device and why, GL renderer, same cwd; or
        ``{'error': why}`` when it could not start an engine."""
        return self.info

    def process(self, jobs: list[Job], overwrite: bool) -> TaskResult:
        """Deblur ``jobs`` (claimed by the driver); ``overwrite`` replaces outputs that exist."""
        return self._gl.submit(self._process, jobs, overwrite).result()

    def _process(self, jobs: list[Job], overwrite: bool) -> TaskResult:
        report = BatchReport()
        self._lines.clear()
        self.runner.overwrite = overwrite
        error = None
        try:
            self.runner.process(jobs, report, self.runner.progress_bar(len(jobs)))
        except Exception as e:  # noqa: BLE001 - a bug or a lost GL context: the driver retries the rest
            error = one_line(e)
            if self.runner.debug:
                self._lines.append(traceback.format_exc().rstrip())
        return TaskResult(report.results, list(self._lines), dict(report.stage_ms), error)


# --- the driver ------------------------------------------------------------------------------------------------
def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'gpu_deconv[ray]'") from None
    return ray


def connect(address: str | None) -> bool:
    """Make sure this process is attached to Ray; True when it started an instance (to shut down later).

    ``'local'``: a private instance on this machine (every GPU and core of it); ``'auto'``: the running
    cluster this machine belongs to (``ray start --head`` / ``RAY_ADDRESS``); anything else: that
    cluster's address (``HOST:PORT`` or ``ray://HOST:10001``); None: Ray's default (``RAY_ADDRESS`` if
    set, else a private instance). A process that already called ``ray.init`` keeps its instance.

    Ray (2.60 here) uses a cluster's token (``~/.ray/auth_token``) by itself only for ``'auto'``; with an
    explicit address, ``RAY_AUTH_MODE=token`` must be set. ``ray.init`` replaces the SIGTERM handler; the
    caller's is put back.

    Raises
    ------
    ClusterError
        Ray cannot be started or reached (one line, with the hint above for an explicit address).
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    import logging

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - connection refused, bad address, version mismatch...
        if address in (None, "local"):
            raise ClusterError(f"cannot start a local Ray instance: {one_line(e)}") from None
        hint = "" if address == "auto" or os.environ.get("RAY_AUTH_MODE") else (
            " (a cluster with token authentication needs RAY_AUTH_MODE=token with an explicit address)")
        raise ClusterError(f"cannot connect to Ray at {address}: {one_line(e)}{hint}") from None
    finally:
        if main:  # ray.init replaces SIGTERM's handler with sys.exit; the caller's (the CLI's) stays
            signal.signal(signal.SIGTERM, previous)
    return True


@dataclass
class _Unit:
    """Files (slots into the driver's job list) for one task; ``overwrite`` replaces existing outputs."""

    slots: list[int]
    overwrite: bool


@dataclass
class _Actor:
    handle: Any
    tag: str
    ready: Any  # the ObjectRef of describe() until the actor has started, then None
    info: dict | None = None
    alive: bool = True
    tasks: dict[Any, tuple[_Unit, list[Job]]] = field(default_factory=dict)  # ref -> (unit, jobs as sent)


class Driver:
    """Hands claimed jobs to a pool of :class:`Worker` actors and collects their results (module docs).

    Parameters
    ----------
    params : DeconvParams
    address : str, optional
        Where Ray is (:func:`connect`); attached only when some output is claimed.
    overwrite, skip_existing, fmt, quality, tile, max_pixels, jpeg_noise, video_options, progress, verbose, debug, log
        As for :class:`~gpu_deconv.io.batch.BatchRunner` (the driver's runner claims targets and logs).
    actors : int, optional
        Pool size; default one per GPU of the cluster, or one per CPU slot when it has no GPU.
    batch_size : int, optional
        Images per task; default :func:`default_batch`.
    max_retries : int
        Times a file is retried after its worker died (:data:`MAX_RETRIES`).
    """

    def __init__(self, params: DeconvParams, *, address: str | None = None, overwrite: bool = False,
                 skip_existing: bool = False, fmt: str | None = None, quality: int | None = None,
                 tile: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS, jpeg_noise: bool = True,
                 video_options: VideoOptions | None = None, progress: bool | None = None, verbose: bool = False,
                 debug: bool = False, log: Callable[[str], None] | None = None, actors: int | None = None,
                 batch_size: int | None = None, max_retries: int = MAX_RETRIES) -> None:
        for name, value, least in (("actors", actors, 1), ("batch_size", batch_size, 1),
                                   ("max_retries", max_retries, 0)):
            if value is not None and value < least:
                raise UsageError(f"{name} must be >= {least}, got {value}")
        self.params = params
        self.address = address
        self.runner = BatchRunner(None, params, overwrite=overwrite, skip_existing=skip_existing, fmt=fmt,
                                  quality=quality, tile=tile, progress=progress, verbose=verbose, debug=debug,
                                  log=log)
        self.options = WorkerOptions(fmt=fmt, quality=quality, tile=tile, max_pixels=max_pixels,
                                     jpeg_noise=jpeg_noise, video_options=video_options, verbose=verbose,
                                     debug=debug)
        self.overwrite = overwrite
        self.actors = actors
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.log = self.runner.log
        #: The actors of the current run (a test finds one to kill by its tag).
        self.pool: list[_Actor] = []
        # the current run: claimed jobs (a slot is an index here), tries per slot, work not yet handed out
        self.jobs: list[Job] = []
        self.tries: list[int] = []
        self.queue: deque[_Unit] = deque()
        self.slot_of: dict[int, int] = {}  # id(FileResult) -> slot, to put the rows in job order
        self.start_errors: list[str] = []
        self.report = BatchReport()
        self.bar = None

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self, jobs: list[Job], report: BatchReport | None = None) -> BatchReport:
        """Claim the outputs of ``jobs``, process the claimed ones on the pool, add every result to ``report``.

        Raises
        ------
        UsageError
            Ray is not installed.
        ClusterError
            Ray cannot be reached, or no worker starts.
        KeyboardInterrupt
            Passed on after the workers are killed and their temp files removed.
        """
        report = report if report is not None else BatchReport()
        ray = _import_ray()
        t0 = time.perf_counter()
        self.report = report
        self.bar = self.runner.progress_bar(len(jobs))
        first = len(report.results)
        self.slot_of = {}
        try:
            ready = self.runner.claim_targets(jobs, report, self.bar)
            # slots in the local run's order: images, then videos
            self.jobs = [j for j in ready if not j.video] + [j for j in ready if j.video]
            if self.jobs:
                started = connect(self.address)
                try:
                    self._run_pool(ray)
                finally:
                    if started:
                        ray.shutdown()
        finally:
            self.bar.close()
            ours = report.results[first:]
            ours.sort(key=lambda r: self.slot_of.get(id(r), -1))  # claimed-away rows first, as locally
            report.results[first:] = ours
            report.seconds += time.perf_counter() - t0
        return report

    def _run_pool(self, ray) -> None:
        self.pool = []
        self.start_errors = []
        self.tries = [0] * len(self.jobs)
        try:
            self._start_pool(ray)
            images = [s for s, j in enumerate(self.jobs) if not j.video]
            batch = self.batch_size or default_batch(len(images), len(self.pool))
            # videos first: the longest tasks start first, so no worker is left with one at the end
            self.queue = deque(_Unit([s], self.overwrite) for s, j in enumerate(self.jobs) if j.video)
            self.queue.extend(_Unit(images[i:i + batch], self.overwrite) for i in range(0, len(images), batch))
            self._loop(ray)
        except BaseException:
            self._stop_pool(ray, interrupted=True)
            raise
        self._stop_pool(ray, interrupted=False)

    def _start_pool(self, ray) -> None:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        n = self.actors or gpus or cpus
        if gpus:
            options, lp_threads = {"num_gpus": 1, "num_cpus": 0}, None
        else:  # llvmpipe: each actor's renderer gets its share of the cores (unless the user says), no thrashing
            options = {"num_cpus": 1}
            lp_threads = int(os.environ.get("LP_NUM_THREADS") or 0) or max(1, cpus // n)
        cls = ray.remote(max_restarts=0, max_task_retries=0)(Worker)
        cwd = os.getcwd()
        for _ in range(n):
            tag = secrets.token_hex(4)
            handle = cls.options(name=f"gpu_deconv-{tag}", **options).remote(
                tag, self.params, self.options, cwd, lp_threads)
            self.pool.append(_Actor(handle, tag, handle.describe.remote()))

    def _stop_pool(self, ray, interrupted: bool) -> None:
        """Kill the actors; after an interruption wait until they are gone and remove their temp files."""
        for a in self.pool:
            ray.kill(a.handle, no_restart=True)
        if not interrupted:
            return
        refs = [r for a in self.pool for r in a.tasks]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=KILL_WAIT_S)
        for a in self.pool:
            for unit, _ in a.tasks.values():
                self._remove_temp_files(a, unit)

    def _remove_temp_files(self, actor: _Actor, unit: _Unit) -> None:
        from ..io.atomic import remove_tagged_temp_files

        for folder in {self.jobs[s].dst.parent for s in unit.slots}:
            remove_tagged_temp_files(folder, actor.tag)

    def _loop(self, ray) -> None:
        t_start = time.monotonic()
        while self.queue or any(a.tasks for a in self.pool):
            self._dispatch()
            waiting = {a.ready: a for a in self.pool if a.ready is not None}
            running = {ref: a for a in self.pool for ref in a.tasks}
            if not waiting and not running:  # every worker is gone and files are left
                self._fail_queue("no Ray worker left to process it (they died or could not start)")
                return
            if not any(a.info for a in self.pool) and time.monotonic() - t_start > START_TIMEOUT_S:
                raise ClusterError(f"no Ray worker started within {START_TIMEOUT_S:.0f} s "
                                   f"(does the cluster have a free GPU or CPU?)")
            done, _ = ray.wait([*waiting, *running], num_returns=1, timeout=1.0)
            for ref in done:
                if ref in waiting:
                    self._started(ray, waiting[ref], ref)
                else:
                    self._finished(ray, running[ref], ref)

    def _dispatch(self) -> None:
        # a second queued task only once every actor has started: until then it would starve a late one
        depth = 1 if any(a.ready is not None for a in self.pool) else QUEUE_DEPTH
        for a in self.pool:
            while a.alive and a.info is not None and len(a.tasks) < depth and self.queue:
                unit = self.queue.popleft()
                jobs = [self.jobs[s] for s in unit.slots]
                if not a.info["same_cwd"]:  # that node lacks the driver's folder: absolute paths
                    jobs = [replace(j, src=Path(os.path.abspath(j.src)), dst=Path(os.path.abspath(j.dst)))
                            for j in jobs]
                a.tasks[a.handle.process.remote(jobs, unit.overwrite)] = (unit, jobs)

    def _started(self, ray, actor: _Actor, ref) -> None:
        actor.ready = None
        try:
            info = ray.get(ref)
            error = info.get("error")
        except Exception as e:  # noqa: BLE001 - the actor could not be created or died starting
            error = _cause(e)
        if error is not None:
            actor.alive = False
            ray.kill(actor.handle, no_restart=True)
            self.start_errors.append(error)
            if any(a.info for a in self.pool):
                self.log(f"{PROG}: error: a Ray worker could not start: {error}")
            elif not any(a.alive for a in self.pool):
                more = f" (and {len(self.start_errors) - 1} more)" if len(self.start_errors) > 1 else ""
                raise ClusterError(f"no Ray worker could start: {self.start_errors[0]}{more}")
            return
        if not any(a.info for a in self.pool):  # the first worker up: say why the others before it failed
            for e in self.start_errors:
                self.log(f"{PROG}: error: a Ray worker could not start: {e}")
        actor.info = info
        if self.runner.verbose:
            gpus = ",".join(info["gpu_ids"]) or "none"
            lp = f", LP_NUM_THREADS={info['lp_threads']}" if info["lp_threads"] else ""
            self.log(f"{PROG}: ray worker {actor.tag} on {info['node']} (pid {info['pid']}): {info['renderer']}; "
                     f"GPU {gpus}: {info['device_choice']}{lp}")
        if not info["same_cwd"]:
            self.log(f"{PROG}: note: ray worker {actor.tag} on {info['node']} has no folder {os.getcwd()}; "
                     f"it is given absolute paths")

    def _finished(self, ray, actor: _Actor, ref) -> None:
        unit, jobs = actor.tasks.pop(ref)
        try:
            out: TaskResult = ray.get(ref)
        except ray.exceptions.RayActorError as e:  # the worker is gone (crash, lost node, ray.kill)
            ray.kill(actor.handle, no_restart=True)  # an unreachable one too: nothing may write behind the retry
            actor.alive = False
            self._remove_temp_files(actor, unit)
            self._retry(unit.slots, f"Ray worker {actor.tag} died ({_cause(e)})")
            return
        except Exception as e:  # noqa: BLE001 - the task could not run there
            self._retry(unit.slots, f"Ray worker {actor.tag} failed ({_cause(e)})")
            return
        for line in out.lines:
            self.log(line)
        for k, v in out.stage_ms.items():
            self.report.stage_ms[k] = self.report.stage_ms.get(k, 0.0) + v
        slot_of_paths = {(str(j.src), str(j.dst)): s for s, j in zip(unit.slots, jobs, strict=True)}
        finished = set()
        for r in out.results:
            s = slot_of_paths[(r.input, r.output)]
            r.input, r.output = str(self.jobs[s].src), str(self.jobs[s].dst)  # the driver's spelling
            finished.add(s)
            self._add(s, r)
        if out.error is not None:  # an unexpected error stopped the task: the rest go elsewhere
            self._retry([s for s in unit.slots if s not in finished], f"Ray worker {actor.tag}: {out.error}")

    def _retry(self, slots: list[int], why: str) -> None:
        """Requeue ``slots`` one file per task (a file that kills workers takes no other file with it)."""
        again = []
        for s in slots:
            self.tries[s] += 1
            job = self.jobs[s]
            if self.tries[s] > self.max_retries:
                self._add(s, FileResult(str(job.src), str(job.dst), "failed",
                                        f"{job.src}: {why}; gave up after {self.tries[s]} tries"), record=True)
            else:
                # An output that exists now was committed, whole, by the lost task (the driver claimed it
                # absent unless --overwrite): the retry replaces it, so the file's result is recorded once.
                again.append(_Unit([s], self.overwrite or os.path.lexists(job.dst)))
        if again:
            self.log(f"{PROG}: note: {why}; retrying {len(again)} file(s) on another worker")
            self.queue.extendleft(reversed(again))

    def _add(self, slot: int, result: FileResult, record: bool = False) -> None:
        self.slot_of[id(result)] = slot
        if record:  # a failure the driver decided: logged as the runner logs its own
            self.runner.record(self.report, result, self.bar)
        else:  # a worker's result: its lines were logged with it
            self.report.results.append(result)
            self.bar.update(1)

    def _fail_queue(self, why: str) -> None:
        while self.queue:
            for s in self.queue.popleft().slots:
                job = self.jobs[s]
                self._add(s, FileResult(str(job.src), str(job.dst), "failed", f"{job.src}: {why}"), record=True)


def _cause(e: BaseException) -> str:
    """One line for a Ray error: the worker's own exception where Ray wraps one; for a dead actor, why."""
    cause = getattr(e, "cause", None)
    text = one_line(cause if isinstance(cause, BaseException) else e)
    why = text.find("The actor is dead because")  # after Ray's actor id, class, pid, namespace fields
    return text[why:] if why >= 0 else text


# --- entry points ----------------------------------------------------------------------------------------------
def run(inputs: Iterable[str | os.PathLike[str]], output: str | os.PathLike[str], params: DeconvParams, *,
        address: str | None = None, suffix: str = "", fmt: str | None = None, **options: Any) -> BatchReport:
    """Deblur files and folders on a Ray cluster, exactly as ``gpu-deconv run INPUTS -o OUTPUT --ray ADDRESS``.

    Parameters
    ----------
    inputs : iterable of path-like
        Files and folders (walked recursively) - readable at the same paths on every node.
    output : path-like
        Output folder (or file, for one input file), mapped as by :func:`~gpu_deconv.io.batch.plan_jobs` -
        writable at the same path on every node.
    params : DeconvParams
    address : str, optional
        ``'local'``, ``'auto'``, a cluster address, or None (see :func:`connect`).
    suffix, fmt
        Output names and image format, as for :func:`~gpu_deconv.io.batch.plan_jobs`.
    **options
        :class:`Driver`'s keyword arguments (``overwrite``, ``skip_existing``, ``actors``, ``batch_size``...).

    Returns
    -------
    BatchReport
        One row per input (missing inputs included): refused or kept outputs first, then in job order.
    """
    driver = Driver(params, address=address, **options)
    jobs, failures, note = plan_jobs(inputs, output, suffix, fmt)
    if note:
        driver.log(f"{PROG}: note: {note}")
    report = BatchReport()
    for f in failures:
        driver.log(f"{PROG}: error: {f.input}: {f.reason}")
        f.reason = f"{f.input}: {f.reason}"
        report.results.append(f)
    return driver.run(jobs, report)


def default_batch(n_images: int, n_actors: int) -> int:
    """Images per task for ``n_images`` over ``n_actors``: :data:`DEFAULT_BATCH`, fewer when that would leave
    an actor without a task."""
    return max(1, min(DEFAULT_BATCH, math.ceil(n_images / n_actors)))
