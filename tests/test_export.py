"""Exported GLSL runs in a real (headless) OpenGL context and matches the NumPy reference; CLI export.

The GLSL target is compiled per pass exactly as its header tells an engine programmer to (``#define
GDC_PASS n`` after line 1, ``#define GDC_VERTEX`` for the vertex shader), driven through moderngl with
RGBA32F/R32F intermediates, and compared with :func:`gpu_deconv.core.reference.apply_plan` in float32.
"""

from __future__ import annotations

import argparse
import re
import stat

import numpy as np
import pytest
from imagegen import textured_image

from gpu_deconv.apps.export import design_description, export_glsl, export_mpv, glsl_float, mpv_cost
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import MixtureStage, Plan
from gpu_deconv.core.reference import apply_plan

#: Methods and the blur each is exported for (sigma within every basis' useful range).
CASES = {
    "comb2": DeconvParams(sigma=0.5, noise=0.01, method="comb", comb_levels=2),
    "comb3": DeconvParams(sigma=0.5, noise=0.01, method="comb", comb_levels=3),
    "laplacian": DeconvParams(sigma=1.2, noise=0.01, method="laplacian"),
    "laplacian_wide": DeconvParams(sigma=2.0, noise=0.005, method="laplacian"),
    "fir": DeconvParams(sigma=1.0, noise=0.01, method="fir"),
    "unsharp": DeconvParams(sigma=1.0, noise=0.01, method="unsharp"),
    "polyblur": DeconvParams(sigma=1.0, noise=0.01, method="polyblur"),
    "identity": DeconvParams(sigma=1.0, noise=0.01, method="identity"),
    "half_strength": DeconvParams(sigma=1.2, noise=0.01, method="laplacian", strength=0.5),
}

_DESIGNS: dict[str, object] = {}


def _design(name: str):
    if name not in _DESIGNS:
        _DESIGNS[name] = FilterDesigner().design(CASES[name])
    return _DESIGNS[name]


def _with_define(source: str, define: str) -> str:
    first, rest = source.split("\n", 1)
    assert first.startswith("#version 330"), first
    return f"{first}\n#define {define}\n{rest}"


def run_exported_glsl(ctx, source: str, plan: Plan, image: np.ndarray) -> np.ndarray:
    """Run every pass of an exported GLSL file as its header documents; float32 intermediates."""
    import moderngl

    img = np.asarray(image, dtype=np.float32)
    gray = img.ndim == 2
    c = 1 if gray else img.shape[2]
    h, w = img.shape[:2]
    made: list = []

    def tex(data: np.ndarray | None = None):
        t = ctx.texture((w, h), c, None if data is None else np.ascontiguousarray(data).tobytes(), dtype="f4")
        t.filter = (moderngl.NEAREST, moderngl.NEAREST)
        made.append(t)
        return t

    vs = _with_define(source, "GDC_VERTEX")
    try:
        src_in = tex(img)
        prev = src_in
        passes: list[tuple[int, list]] = []
        if not plan.stages:
            passes.append((0, [tex()]))
        for s, stage in enumerate(plan.stages):
            passes.append((2 * s, [tex() for _ in range(stage.levels)]))
            passes.append((2 * s + 1, [tex()]))
        result = None
        for i, outs in passes:
            prog = ctx.program(vertex_shader=vs, fragment_shader=_with_define(source, f"GDC_PASS {i}"))
            made.append(prog)
            stage_h = passes[i - 1][1] if i % 2 == 1 else []
            bindings = {"gdc_input": src_in, "gdc_prev": prev}
            bindings.update({f"gdc_h{k}": t for k, t in enumerate(stage_h, start=1)})
            unit = 0
            for name, t in bindings.items():
                if name in prog:
                    t.use(location=unit)
                    prog[name].value = unit
                    unit += 1
            fbo = ctx.framebuffer(color_attachments=outs)
            made.append(fbo)
            fbo.use()
            fbo.viewport = (0, 0, w, h)
            vao = ctx.vertex_array(prog, [])
            made.append(vao)
            vao.render(moderngl.TRIANGLES, vertices=3)
            if i % 2 == 1 or not plan.stages:
                prev = outs[0]
                result = fbo
        data = result.read(components=c, dtype="f4", attachment=0)
        out = np.frombuffer(data, dtype=np.float32).reshape(h, w, c)
        return out[:, :, 0] if gray else out
    finally:
        ctx.detect_framebuffer(0).use()  # never release the framebuffer moderngl believes is bound
        for obj in reversed(made):
            obj.release()


def _image(shape: tuple[int, int], channels: int, seed: int) -> np.ndarray:
    big = (max(shape[0], 32), max(shape[1], 32))  # the generator needs room for its rectangles; crop after
    img = textured_image(big, channels=max(channels, 1), seed=seed)[: shape[0], : shape[1]].copy()
    if channels == 4:
        img[:, :, 3] = np.linspace(0.0, 1.0, shape[0] * shape[1], dtype=np.float32).reshape(shape)
    return img[:, :, 0] if channels == 1 else img


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("shape", "channels"), [((37, 53), 4), ((29, 31), 1), ((3, 7), 4), ((1, 2), 1)])
def test_exported_glsl_matches_reference(gl_ctx, name, shape, channels):
    """Every method, RGBA and gray, odd sizes and images narrower than the kernels (mirror period 2n)."""
    design = _design(name)
    source = export_glsl(design.plan, design_description(design))
    img = _image(shape, channels, seed=len(name))
    got = run_exported_glsl(gl_ctx, source, design.plan, img)
    want = apply_plan(img, design.plan, precision=32)
    assert got.shape == want.shape
    err = float(np.abs(got - want).max())
    assert err <= 1e-5, f"{name} {shape}x{channels}: max abs error {err:.3g}"
    if channels == 4:  # alpha passes through bit for bit
        np.testing.assert_array_equal(got[:, :, 3], img[:, :, 3])


def test_exported_glsl_handmade_multilevel_chain(gl_ctx):
    """A plan no method makes today: two stages of unequal radii, the second reading the previous output."""
    g1 = np.array([0.25, 0.5, 0.25])
    g2 = np.array([1, 4, 6, 4, 1]) / 16.0
    g3 = np.ones(9) / 9.0
    plan = Plan("custom", (
        MixtureStage((g1, g2, g3), np.array([1.5, 0.75, -1.0, -0.25]), "input"),
        MixtureStage((g3, g1), np.array([0.5, 1.0, -0.5]), "previous"),
    ))
    img = _image((17, 5), 4, seed=3)
    got = run_exported_glsl(gl_ctx, export_glsl(plan, "handmade"), plan, img)
    assert float(np.abs(got - apply_plan(img, plan)).max()) <= 1e-5


# ---------------------------------------------------------------------------------------------------------------
# Source-level properties (no GL needed)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [0.0, -0.0, 1.0, 0.1, 1 / 3, -2.5e-8, 3.3786837e-06, 65504.0, 1e30, -7.674207])
def test_glsl_float_roundtrips_float32(x):
    s = glsl_float(x)
    assert re.fullmatch(r"-?(\d+\.\d*|\d+(\.\d*)?e[+-]?\d+)", s), s
    assert np.float32(float(s)) == np.float32(x)


def test_glsl_float_rejects_non_finite():
    with pytest.raises(ValueError):
        glsl_float(float("nan"))


@pytest.mark.parametrize("name", list(CASES))
def test_exports_carry_taps_header_and_licence(name):
    design = _design(name)
    desc = design_description(design)
    g = export_glsl(design.plan, desc)
    m = export_mpv(design.plan, desc + "\n//!HOOK injected")
    for text in (g, m):
        assert desc in text
        assert "MIT licence" in text and "no GPL/LGPL code" in text
    assert g.startswith("#version 330 core\n")
    assert f"PASSES: {design.plan.passes}" in g
    # a newline in the description cannot start a line of its own, so it cannot inject a directive
    assert not any(line.startswith("//!HOOK injected") for line in m.splitlines())
    hooks = [ln for ln in m.splitlines() if ln.startswith("//!HOOK")]
    expected = 1 + sum(s.levels + 1 for s in design.plan.stages) if design.plan.stages else 1
    assert hooks == ["//!HOOK MAIN"] * expected
    assert mpv_cost(design.plan)[0] == expected
    for s, stage in enumerate(design.plan.stages):
        for k, taps in enumerate(stage.taps, start=1):
            arr = re.search(rf"const float GDC_S{s}_G{k}\[\d+\] = float\[\d+\]\(([^)]*)\);", g).group(1)
            np.testing.assert_array_equal(np.array([np.float32(v) for v in arr.split(",")]), taps)


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------
def _cli(argv: list[str]) -> int:
    from gpu_deconv.apps.export_cli import add_export_parser

    ap = argparse.ArgumentParser(prog="gpu-deconv")
    sub = ap.add_subparsers(dest="command", required=True)
    add_export_parser(sub)
    args = ap.parse_args(argv)
    return args.func(args)


def test_cli_export_writes_atomically_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "deblur.glsl"
    assert _cli(["export", "--format", "mpv", "--sigma", "1.2", "--noise", "0.01", "-o", str(out)]) == 0
    text = out.read_text()
    assert "//!HOOK MAIN" in text and "sigma=1.2" in text
    assert stat.S_IMODE(out.stat().st_mode) & 0o444  # readable, not mkstemp's 0600 only
    assert _cli(["export", "--format", "glsl", "--sigma", "1", "--noise", "0.01", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "exists" in err and "--overwrite" in err
    assert out.read_text() == text
    assert _cli(["export", "--format", "glsl", "--sigma", "1", "--noise", "0.01", "--method", "polyblur",
                 "--strength", "0.5", "-o", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("#version 330 core") and "strength=0.5" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deblur.glsl"]  # no temp file left behind


def test_cli_export_stdout_and_errors(tmp_path, capsys):
    assert _cli(["export", "--format", "glsl", "--sigma", "0.5", "--noise", "0.02", "--method", "comb"]) == 0
    assert capsys.readouterr().out.startswith("#version 330 core")
    # the 2-level comb's useful sigma range ends at 1 px: a parameter the method refuses is one line, exit 2
    # (a usage error, like every out-of-range value), nothing written
    out = tmp_path / "x.glsl"
    assert _cli(["export", "--format", "mpv", "--sigma", "1.5", "--noise", "0.01", "--method", "comb",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert not out.exists()
    # invalid parameter values are usage errors (exit 2), as are malformed flags (argparse)
    assert _cli(["export", "--format", "mpv", "--sigma", "-1", "--noise", "0.01"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        _cli(["export", "--format", "png", "--sigma", "1", "--noise", "0.01"])
    assert e.value.code == 2
    capsys.readouterr()  # argparse's usage text
    assert _cli(["export", "--format", "mpv", "--noise", "0.01"]) == 2  # no sigma (and no --params)
    assert capsys.readouterr().err.count("\n") == 1
    # a missing output folder is an error, not a traceback
    assert _cli(["export", "--format", "mpv", "--sigma", "1", "--noise", "0.01", "-o",
                 str(tmp_path / "nope" / "x.glsl")]) == 1
    assert capsys.readouterr().err.count("\n") == 1
