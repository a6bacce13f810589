"""Batch jobs on Ray (issue #16): a local Ray instance with 2 CPU slots, 2 worker actors on llvmpipe.

One Ray instance serves the module (starting one costs seconds); each run starts its own 2 actors. The
single-process run (``gpu-deconv run`` without ``--ray``) is the reference: outputs must be bit-identical,
and the report the same rows but for the timings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from gpu_deconv.apps.cli import main
from gpu_deconv.apps.distributed import Driver, choose_egl_device, default_batch
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.io.atomic import atomic_write, remove_tagged_temp_files, set_temp_tag
from gpu_deconv.io.batch import plan_jobs
from gpu_deconv.io.images import read_image, write_image

pytestmark = pytest.mark.usefixtures("gl_ctx")  # the workers render with EGL like the local run
ROOT = Path(__file__).resolve().parent.parent
PARAMS = ["--sigma", "1", "--noise", "0.01"]


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden temp files included) with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".gd-*")]


def noise_image(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def rows(report_file: Path) -> list[dict]:
    """The --report rows without the timings (the one thing a distributed run may change)."""
    return [{k: v for k, v in r.items() if k != "ms"} for r in json.loads(report_file.read_text())["files"]]


def summary(err: str) -> str:
    """The summary line without its timings."""
    return re.sub(r" \([\d.]+ fps\)", "", next(ln for ln in err.splitlines() if " ok, " in ln).split(";")[0])


def make_clip(path: Path) -> None:
    from gpu_deconv.io.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-t", "0.5",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)


def test_outputs_and_report_equal_the_single_process_run(tmp_path, capsys, ray_instance):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_image(src / "a.png", noise_image((40, 56, 3)))
    write_image(src / "b16.png", noise_image((33, 41, 4), np.uint16, 1))
    write_image(src / "c.tif", noise_image((30, 44, 3), np.float32, 2))
    write_image(src / "sub" / "d.jpg", noise_image((32, 48, 3), seed=3), quality=90)
    write_image(src / "sub" / "e.webp", noise_image((28, 36, 3), seed=4))
    np.save(src / "sub" / "f.npy", noise_image((24, 30), np.float32, 5))
    (src / "sub" / "bad.png").write_text("not a png")
    make_clip(src / "clip.mp4")
    base = ["run", str(src), *PARAMS, "--noise", "auto", "-q"]
    code, err_local = run(capsys, *base, "-o", str(tmp_path / "local"), "--report", str(tmp_path / "local.json"))
    assert code == 1, err_local
    code, err_ray = run(capsys, *base, "-o", str(tmp_path / "ray"), "--report", str(tmp_path / "ray.json"),
                        "--ray", "local")
    assert code == 1, err_ray
    assert summary(err_ray) == summary(err_local) == "gpu-deconv: 7 ok, 1 failed of 8 file(s), 12 video frame(s)"
    errors = [ln for ln in err_ray.splitlines() if "error" in ln]
    assert errors == [ln for ln in err_local.splitlines() if "error" in ln] and "bad.png" in errors[0]
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "local")  # bit-identical, no temp file
    assert len(snapshot(tmp_path / "ray")) == 7
    # the same rows; the local pipeline records a decode failure before the files still encoding, so compare
    # them in input order
    local_rows = sorted(rows(tmp_path / "local.json"), key=lambda r: r["input"])
    ray_rows = sorted(({**r, "output": r["output"].replace(str(tmp_path / "ray"), str(tmp_path / "local"))}
                       for r in rows(tmp_path / "ray.json")), key=lambda r: r["input"])
    assert ray_rows == local_rows


def test_killed_worker_file_is_retried_and_completed(tmp_path, capsys, ray_instance):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):  # noise compresses badly: each PNG takes a while to encode, a write is easy to catch
        write_image(src / f"{i}.png", noise_image((700, 700, 3), seed=i))
    code, err = run(capsys, "run", str(src), "-o", str(tmp_path / "local"), *PARAMS, "-q")
    assert code == 0, err
    out = tmp_path / "out"
    out.mkdir()
    killed: list[str] = []
    stop = threading.Event()

    def kill_a_worker_mid_write() -> None:
        # once the first outputs are whole, the next temp file is most likely a second file of a batch of 2
        while not stop.is_set() and not killed:
            if len([p for p in out.glob("*.png")]) >= 1:
                for p in out.glob(".gd-*"):
                    tag = p.name.split("-")[1]
                    ray.kill(ray.get_actor(f"gpu_deconv-{tag}"))
                    killed.append(tag)
                    return
            time.sleep(0.002)

    lines: list[str] = []
    jobs, _, _ = plan_jobs([src], out)
    watcher = threading.Thread(target=kill_a_worker_mid_write)
    watcher.start()
    try:
        report = Driver(DeconvParams(sigma=1.0, noise=0.01), actors=2, batch_size=2, progress=False,
                        log=lines.append).run(jobs)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no write was caught in flight"
    assert any("died" in ln and "retrying" in ln for ln in lines), lines
    assert [(Path(r.input).name, r.status) for r in report.results] == [(f"{i}.png", "ok") for i in range(4)]
    assert not temp_files(out)
    assert snapshot(out) == snapshot(tmp_path / "local")


def test_existing_output_is_kept_and_skip_existing_resumes(tmp_path, capsys, ray_instance):
    write_image(tmp_path / "in" / "a.png", noise_image((20, 24, 3))) if (tmp_path / "in").mkdir() is None else None
    write_image(tmp_path / "in" / "b.png", noise_image((20, 24, 3), seed=1))
    mine = noise_image((8, 8, 3), seed=9)
    write_image(tmp_path / "out" / "a.png", mine) if (tmp_path / "out").mkdir() is None else None
    args = ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *PARAMS, "-q", "--ray", "local"]
    code, err = run(capsys, *args)
    assert code == 1 and "1 ok, 0 failed, 1 skipped" in err and "--overwrite" in err, err
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png").pixels, mine)
    assert (tmp_path / "out" / "b.png").exists()
    before = snapshot(tmp_path / "out")
    code, err = run(capsys, *args, "--skip-existing")
    assert code == 0 and "0 ok, 0 failed, 2 skipped" in err, err
    assert snapshot(tmp_path / "out") == before


def test_interrupt_kills_the_workers_and_leaves_no_temp_file(tmp_path, capsys, ray_instance):
    src = tmp_path / "in"
    src.mkdir()
    n = 16  # enough that the interrupt, delivered when the first temp file shows, lands before the last one
    for i in range(n):
        write_image(src / f"{i}.png", noise_image((700, 700, 3), seed=i))
    out = tmp_path / "out"
    out.mkdir()

    def ctrl_c_mid_write() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not any(out.glob(".gd-*")):
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=ctrl_c_mid_write)
    watcher.start()
    try:
        code, err = run(capsys, "run", str(src), "-o", str(out), *PARAMS, "-q", "--ray", "local")
    finally:
        watcher.join()
    assert code == 130 and "interrupted" in err, err
    assert not temp_files(out)
    for p in out.iterdir():  # whatever was finished is whole
        assert read_image(p).pixels.shape == (700, 700, 3)
    assert len(list(out.iterdir())) < n


def test_worker_egl_device_choice_without_nvidia():
    """Ray's GPU ids -> EGL device. Only the fall back (no EGL_NV_device_cuda) can be checked on Mesa."""
    from gpu_deconv.gl.context import GLUnavailableError, create_headless_context, egl_device_for_cuda, egl_devices

    devices = egl_devices()
    assert devices and all(d.cuda_device is None for d in devices)  # llvmpipe has no CUDA device
    assert egl_device_for_cuda(0) is None
    assert choose_egl_device([]) == (None, "default EGL device (no GPU assigned)")
    assert choose_egl_device([0])[0] == 0 and "no EGL_NV_device_cuda" in choose_egl_device([0])[1]
    assert choose_egl_device([len(devices)])[0] is None
    assert choose_egl_device(["GPU-3f1c"])[0] is None
    ctx = create_headless_context(device_index=0)
    try:
        assert ctx.info["GL_RENDERER"]
    finally:
        ctx.release()
    with pytest.raises(GLUnavailableError, match=f"EGL device {len(devices)}"):
        create_headless_context(device_index=len(devices))


def test_temp_tag_names_and_removes_only_its_own_files(tmp_path):
    def leave_temp(tag: str | None) -> None:
        set_temp_tag(tag)

        def crash(fh) -> None:
            leftovers.extend(p.name for p in tmp_path.glob(".gd-*"))
            raise KeyboardInterrupt

        try:
            atomic_write(tmp_path / "x.png", crash)
        except KeyboardInterrupt:
            pass

    leftovers: list[str] = []
    try:
        leave_temp("ab12")
        assert leftovers and leftovers[0].startswith(".gd-ab12-") and leftovers[0].endswith(".tmp")
        assert not list(tmp_path.iterdir())  # an unwinding write removes its own temp file
        for name in (".gd-ab12-k2j4x9_q.tmp", ".gd-ab123-aaaaaaaa.tmp", ".gd-zzzzzzzz.tmp", "ab12.png"):
            (tmp_path / name).write_bytes(b"x")  # what a killed worker and its neighbours leave
        assert remove_tagged_temp_files(tmp_path, "ab12") == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == [".gd-ab123-aaaaaaaa.tmp", ".gd-zzzzzzzz.tmp",
                                                              "ab12.png"]
        with pytest.raises(ValueError):
            set_temp_tag("a-b")
    finally:
        set_temp_tag(None)


def test_batches_leave_no_worker_idle():
    assert default_batch(100, 2) == 4
    assert default_batch(6, 2) == 3  # a batch of 4 would leave one worker 2 files, the other 4
    assert default_batch(1, 8) == 1


def test_help_and_import_do_not_load_ray():
    code = ("import sys, gpu_deconv.apps.cli as c, gpu_deconv.apps.distributed; c.build_parser(); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_local_instance_from_the_cli_with_workers_that_cannot_start(tmp_path):
    """A fresh process: ``--ray local`` starts (and stops) a private instance; workers without GL -> one line."""
    write_image(tmp_path / "a.png", noise_image((20, 24, 3)))
    cmd = [sys.executable, "-m", "gpu_deconv.apps.cli", "run", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
           *PARAMS, "-q", "--ray", "local"]
    env = {**os.environ, "GLCONTEXT_LINUX_LIBGL": "/nonexistent/libGL.so.1"}  # no GL for glcontext, any backend
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("gpu-deconv")]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "no Ray worker could start" in lines[0], lines
    assert "could not create a headless OpenGL" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "a.png").exists()


def test_benchmark_quick_mode(ray_instance):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_distributed", ROOT / "benchmarks" / "bench_distributed.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(bench)
        table = bench.main(["--quick"])  # asserts every Ray run's outputs equal the single-process run's
    finally:
        sys.modules.pop(spec.name, None)
    assert "| single process (gpu-deconv run) |" in table and "| Ray, 2 actor(s) (2 CPU slot) |" in table
