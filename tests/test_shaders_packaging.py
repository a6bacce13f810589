"""The shader lookup works from a source checkout, an installed wheel and $GPU_DECONV_SHADER_DIR; every
shader variant compiles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gpu_deconv.gl import shaders as S

REPO = Path(__file__).resolve().parent.parent


def test_source_checkout_lookup():
    d = S.shader_dir()
    assert d.resolve() == (REPO / "shaders").resolve() or d.resolve() == (REPO / "gpu_deconv" / "shaders").resolve()
    for name in S.SHADER_FILES:
        text = (d / name).read_text(encoding="utf-8")
        assert text.startswith("//"), f"{name} must start with its header comment"
        if name.endswith((".frag", ".vert")):
            assert "#version 330 core" in text


def test_env_override_and_error_message(tmp_path, monkeypatch):
    alt = tmp_path / "alt"
    shutil.copytree(REPO / "shaders", alt)
    monkeypatch.setenv("GPU_DECONV_SHADER_DIR", str(alt))
    assert S.shader_dir() == alt
    monkeypatch.setattr(S, "_candidates", lambda: [tmp_path / "nowhere"])
    with pytest.raises(S.ShaderNotFoundError, match="nowhere"):
        S.shader_dir()


def test_installed_layout_lookup(tmp_path):
    """A wheel puts shaders/ at gpu_deconv/shaders (pyproject force-include); the lookup finds it there."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "gpu_deconv", site / "gpu_deconv", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "shaders", site / "gpu_deconv" / "shaders")
    env = {k: v for k, v in os.environ.items() if k != "GPU_DECONV_SHADER_DIR"}
    env["PYTHONPATH"] = str(site)
    code = ("from gpu_deconv.gl.shaders import shader_dir, build_source; "
            "print(shader_dir()); build_source('mixture_v.frag')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True)
    assert Path(out.stdout.strip()) == site / "gpu_deconv" / "shaders"


def test_wheel_contains_shaders(tmp_path, monkeypatch):
    build = pytest.importorskip("hatchling.build")
    monkeypatch.chdir(REPO)
    name = build.build_wheel(str(tmp_path))
    with zipfile.ZipFile(tmp_path / name) as zf:
        names = set(zf.namelist())
    for f in S.SHADER_FILES:
        assert f"gpu_deconv/shaders/{f}" in names


def test_build_source_markers():
    src = S.build_source("mixture_h.frag", {"LEVELS": 3, "COLOUR": 1, "SPECIALIZED": True, "OFF": False},
                         body="    v = FETCH_X(0);")
    lines = src.splitlines()
    first = next(ln for ln in lines if ln.startswith("#"))
    assert first == "#version 330 core"
    assert "#define LEVELS 3" in lines and "#define SPECIALIZED" in lines
    assert not any("OFF" in ln for ln in lines)
    assert "int mirror_index(int p, int n) {" in src  # common.glsl pasted in
    assert "//@" not in src


def test_every_variant_compiles(gl_ctx):
    from gpu_deconv.gl.executor import PlanExecutor, h_body, v_body

    vert = S.build_source("fullscreen.vert")
    progs = []
    for colour in (1, 3):
        for dec in (False, True):
            for enc in (False, True):
                progs.append(S.build_source("copy.frag", {"COLOUR": colour, "DECODE_SRGB": dec, "ENCODE_SRGB": enc}))
        for per in (False, True):
            progs.append(S.build_source("atrous.frag", {"COLOUR": colour, "MIRROR_PERIODIC": per}))
        progs.append(S.build_source("stats_reduce.frag", {"COLOUR": colour}))
        for k in range(1, 8):
            progs.append(S.build_source("mixture_h.frag", {"LEVELS": k, "COLOUR": colour}))
            progs.append(S.build_source("mixture_v.frag", {"LEVELS": k, "COLOUR": colour, "HAS_ALPHA": colour == 3,
                                                           "ENCODE_SRGB": True}))
        shape = tuple(tuple(range(-r, r + 1)) for r in (1, 3, 15))
        progs.append(S.build_source("mixture_h.frag", {"LEVELS": 3, "COLOUR": colour, "SPECIALIZED": True},
                                    h_body(shape)))
        progs.append(S.build_source("mixture_v.frag", {"LEVELS": 3, "COLOUR": colour, "SPECIALIZED": True,
                                                       "MIRROR_PERIODIC": True}, v_body(shape)))
    for frag in progs:
        gl_ctx.program(vertex_shader=vert, fragment_shader=frag).release()
    assert PlanExecutor  # imported for the body generators
