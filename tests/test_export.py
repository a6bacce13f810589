"""Exported GLSL runs in a real (headless) OpenGL context and matches the NumPy reference; CLI export.

The GLSL target is compiled per pass exactly as its header tells an engine programmer to (``#define
GDC_PASS n`` after line 1, ``#define GDC_VERTEX`` for the vertex shader), driven through moderngl with
RGBA32F/R32F intermediates, and compared with :func:`gpu_deconv.core.reference.apply_plan` in float32
(global mode) or :func:`gpu_deconv.core.adaptive.apply_adaptive` at precision 32 (adaptive mode): within
1e-5, and bit for bit on Mesa llvmpipe for the adaptive export, whose sums are ``precise`` there (no fused
multiply-add), so they round exactly like the reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import stat

import numpy as np
import pytest
from imagegen import textured_image

from gpu_deconv.apps.export import (
    adaptive_description,
    design_description,
    export_glsl,
    export_glsl_adaptive,
    export_mpv,
    export_mpv_adaptive,
    glsl_adaptive_cost,
    glsl_float,
    mpv_adaptive_cost,
    mpv_cost,
)
from gpu_deconv.apps.export_cli import adaptive_table
from gpu_deconv.core.adaptive import TABLE_SIZE, apply_adaptive
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

#: The adaptive mode's cases: both bases, narrow and wide blur, low noise (method auto: the laplacian).
ADAPTIVE_CASES = {
    "laplacian": DeconvParams(sigma=1.2, noise=0.01, method="laplacian"),
    "laplacian_wide": DeconvParams(sigma=2.0, noise=0.005, method="laplacian"),
    "comb2": DeconvParams(sigma=0.5, noise=0.01, method="comb", comb_levels=2),
    "comb3": DeconvParams(sigma=0.8, noise=0.01, method="comb", comb_levels=3),
    "auto_low_noise": DeconvParams(sigma=1.0, noise=0.002),
}

_DESIGNS: dict[str, object] = {}
_TABLES: dict[str, object] = {}


def adaptive_case(name: str):
    """``(params, table)`` of :data:`ADAPTIVE_CASES` ``name`` (the table as the export CLI solves it)."""
    if name not in _TABLES:
        _TABLES[name] = adaptive_table(ADAPTIVE_CASES[name])
    return ADAPTIVE_CASES[name], _TABLES[name]


def scaled_table(table, strength: float):
    """``table`` with its coefficients times ``strength`` in float32 - what a baked strength exports."""
    return dataclasses.replace(table, coefficients=(np.float32(strength) * table.coefficients).astype(np.float32))


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


def run_exported_adaptive_glsl(ctx, source: str, k: int, image: np.ndarray) -> np.ndarray:
    """Run the 4 passes of an adaptive GLSL export as its header documents: H_k and L_k with the input's
    channels (a gray+alpha image travels in RGBA, gray in .r and alpha in .a), e and the half-resolution D in
    R32F, all float32; gray and gray+alpha compiled with ``GDC_COLOUR 1``."""
    import moderngl

    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    h, w, c = img.shape
    colour = 1 if c <= 2 else 3
    data = img
    if c == 2:  # the documented layout: gray in .r, alpha in .a
        data = np.zeros((h, w, 4), np.float32)
        data[:, :, 0], data[:, :, 3] = img[:, :, 0], img[:, :, 1]
    comps = data.shape[2]
    made: list = []

    def tex(size, n, arr=None):
        t = ctx.texture(size, n, None if arr is None else np.ascontiguousarray(arr).tobytes(), dtype="f4")
        t.filter = (moderngl.NEAREST, moderngl.NEAREST)
        made.append(t)
        return t

    defines = [f"GDC_COLOUR {colour}"]

    def prog(extra: str):
        src = source
        for d in [*defines, extra]:
            src = _with_define(src, d)
        return src

    try:
        src_in = tex((w, h), comps, data)
        hs = [tex((w, h), comps) for _ in range(k)]
        bands = [tex((w, h), comps) for _ in range(k)]
        e = tex((w, h), 1)
        d = tex(((w + 1) // 2, (h + 1) // 2), 1)
        result = tex((w, h), comps)
        vs = prog("GDC_VERTEX")
        passes = [
            (0, {"gdc_input": src_in}, hs),
            (1, {"gdc_input": src_in, **{f"gdc_h{j + 1}": t for j, t in enumerate(hs)}}, [*bands, e]),
            (2, {"gdc_e": e}, [d]),
            (3, {"gdc_input": src_in, **{f"gdc_b{j + 1}": t for j, t in enumerate(bands)}, "gdc_d": d}, [result]),
        ]
        for i, bindings, outs in passes:
            p = ctx.program(vertex_shader=vs, fragment_shader=prog(f"GDC_PASS {i}"))
            made.append(p)
            for unit, (name, t) in enumerate(bindings.items()):
                assert name in p, f"pass {i} does not read {name}"
                t.use(location=unit)
                p[name].value = unit
            fbo = ctx.framebuffer(color_attachments=outs)
            made.append(fbo)
            fbo.use()
            fbo.viewport = (0, 0, *outs[0].size)
            vao = ctx.vertex_array(p, [])
            made.append(vao)
            vao.render(moderngl.TRIANGLES, vertices=3)
        out = np.frombuffer(result.read(), dtype=np.float32).reshape(h, w, comps)
    finally:
        ctx.detect_framebuffer(0).use()  # never release the framebuffer moderngl believes is bound
        for obj in reversed(made):
            obj.release()
    if c == 2:
        out = out[:, :, [0, 3]]
    return out[:, :, 0] if np.ndim(image) == 2 else out


def _llvmpipe(ctx) -> bool:
    return "llvmpipe" in str(ctx.info.get("GL_RENDERER", "")).lower()


@pytest.mark.parametrize("name", list(ADAPTIVE_CASES))
@pytest.mark.parametrize(("shape", "channels"), [((37, 53), 4), ((29, 31), 1), ((19, 6), 3), ((5, 8), 2),
                                                 ((3, 7), 4), ((1, 2), 1), ((2, 1), 3)])
def test_exported_adaptive_glsl_matches_reference(gl_ctx, name, shape, channels):
    """Every basis, RGBA/RGB/gray/gray+alpha, odd sizes, images narrower than the kernels and than the
    half-resolution window: the reference at precision 32 within 1e-5, bit for bit on llvmpipe."""
    params, table = adaptive_case(name)
    source = export_glsl_adaptive(table, adaptive_description(params, table))
    img = _image(shape, channels, seed=len(name) + channels)
    got = run_exported_adaptive_glsl(gl_ctx, source, table.size, img)
    want = apply_adaptive(img, table, precision=32).output
    assert got.shape == want.shape
    err = float(np.abs(got - want).max())
    assert err <= 1e-5, f"{name} {shape}x{channels}: max abs error {err:.3g}"
    if _llvmpipe(gl_ctx):
        np.testing.assert_array_equal(got, want)
    if channels in (2, 4):  # alpha passes through bit for bit
        np.testing.assert_array_equal(got[:, :, -1], img[:, :, -1])
    if shape == (37, 53):  # the filter did act
        assert float(np.abs(want - img).max()) > 0.05


@pytest.mark.parametrize("strength", [0.0, 0.5, 2.5])
def test_exported_adaptive_glsl_strength(gl_ctx, strength):
    """A baked strength s scales the table: the output is x + s sum c_k L_k (and the input at s = 0)."""
    params, table = adaptive_case("laplacian")
    img = _image((23, 31), 3, seed=5)
    got = run_exported_adaptive_glsl(gl_ctx, export_glsl_adaptive(table, "s", strength=strength), table.size, img)
    np.testing.assert_allclose(got, apply_adaptive(img, scaled_table(table, strength), precision=32).output,
                               rtol=0, atol=1e-5)
    full = apply_adaptive(img, table, precision=32).output
    np.testing.assert_allclose(got, img + np.float32(strength) * (full - img), rtol=0, atol=2e-5)
    if strength == 0.0:
        np.testing.assert_array_equal(got, img)
    with pytest.raises(ValueError, match="0..4"):
        export_glsl_adaptive(table, "s", strength=-0.5)


@pytest.mark.parametrize(("shape", "channels"), [((37, 53), 4), ((29, 31), 1), ((1, 2), 1)])
@pytest.mark.parametrize(("margin", "strength"), [(0.0, 1.0), (0.5, 1.0), (0.25, 1.5)])
def test_exported_adaptive_glsl_limiter(gl_ctx, shape, channels, margin, strength):
    """The halo limiter after the (baked) strength, as ``apply_adaptive(..., limiter=)`` (a division: within
    1e-5, not bit for bit); margin 0 is a hard clamp to the input's 5-pixel range."""
    _, table = adaptive_case("laplacian")
    img = _image(shape, channels, seed=7)
    source = export_glsl_adaptive(table, "lim", strength=strength, limiter=margin)
    got = run_exported_adaptive_glsl(gl_ctx, source, table.size, img)
    want = apply_adaptive(img, scaled_table(table, strength), precision=32, limiter=margin).output
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    if shape == (37, 53):  # the limiter acted
        unlimited = apply_adaptive(img, scaled_table(table, strength), precision=32).output
        assert float(np.abs(want - unlimited).max()) > 1e-3
    assert f"margin {margin:g}" in source and f"4 passes, {glsl_adaptive_cost(table, True)[1]} texel" in source
    with pytest.raises(ValueError, match="limiter"):
        export_glsl_adaptive(table, "lim", limiter=float("nan"))


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


def _table_layout(table, strength: float = 1.0) -> np.ndarray:
    """``(rows, TABLE_SIZE, 4)``: row r holds coefficients 4r..4r+3 (zero-padded) - AdaptiveExecutor's texture."""
    coef = scaled_table(table, strength).coefficients
    rows = -(-table.size // 4)
    out = np.zeros((rows, TABLE_SIZE, 4), np.float32)
    for r in range(rows):
        out[r, :, : coef[:, 4 * r:4 * r + 4].shape[1]] = coef[:, 4 * r:4 * r + 4]
    return out


@pytest.mark.parametrize("name", list(ADAPTIVE_CASES))
def test_adaptive_exports_embed_the_table_and_document_it(name):
    params, table = adaptive_case(name)
    desc = adaptive_description(params, table)
    g = export_glsl_adaptive(table, desc, strength=0.75)
    m = export_mpv_adaptive(table, desc + "\n//!HOOK injected //!TEXTURE x", strength=0.75)
    rows = -(-table.size // 4)
    want = _table_layout(table, 0.75)
    # GLSL: a constant array, element i + 32 r
    arr = re.search(r"const vec4 GDC_TABLE\[(\d+)\] = vec4\[\d+\]\((.*?)\n\);", g, re.S)
    assert int(arr.group(1)) == rows * TABLE_SIZE
    vals = [np.float32(v) for v in re.findall(r"[-0-9.e+]+(?=[,)])", arr.group(2))]
    np.testing.assert_array_equal(np.array(vals, np.float32).reshape(rows, TABLE_SIZE, 4), want)
    # mpv: an RGBA32F //!TEXTURE whose hex data are the same little-endian floats
    lines = m.splitlines()
    t = lines.index("//!TEXTURE GDC_TABLE")
    assert lines[t + 1:t + 4] == [f"//!SIZE {TABLE_SIZE} {rows}", "//!FORMAT rgba32f", "//!FILTER NEAREST"]
    np.testing.assert_array_equal(np.frombuffer(bytes.fromhex(lines[t + 4]), "<f4").reshape(want.shape), want)
    # mpv ends a block's code at the next "//!" anywhere: directives only, never inside a line
    assert all(ln.startswith("//!") for ln in lines if "//!" in ln)
    assert not any(ln.startswith("//!HOOK injected") for ln in lines)
    hooks = [ln for ln in lines if ln.startswith("//!HOOK")]
    assert hooks == ["//!HOOK MAIN"] * mpv_adaptive_cost(table)[0] == ["//!HOOK MAIN"] * (2 * table.size + 4)
    # headers: what is computed, the passes, their cost, the table, the precision, the licence
    passes, fetches = glsl_adaptive_cost(table)
    assert "PASSES: 4" in g and f"4 passes, {fetches} texel fetches" in g and passes == 4
    assert f"{mpv_adaptive_cost(table)[0]} passes, {mpv_adaptive_cost(table)[1]} texel fetches per pixel" in m
    for text in (g, m):
        assert desc in text and "MIT licence" in text and "no GPL/LGPL code" in text
        assert "Precision" in text or "32-bit float" in text
        assert f"L_{table.bands[0] + 1}" in text and f"2^({-10} + i)" in text
    assert g.startswith("#version 330 core\n")
    for k, taps in enumerate(table.basis.lowpass_taps, start=1):
        for text in (g, m):
            arr = re.search(rf"const float GDC_A_G{k}\[\d+\] = float\[\d+\]\(([^)]*)\);", text).group(1)
            np.testing.assert_array_equal(np.array([np.float32(v) for v in arr.split(",")]), taps.astype(np.float32))


def test_adaptive_costs():
    """The laplacian (K = 5, radii 3..7, energy bands L3, L4): mpv 14 hooks and 300 fetches per pixel (global:
    7 and 112), GLSL 4 passes and 85 fetches; the 2-level comb: 8 hooks."""
    _, lap = adaptive_case("laplacian")
    assert lap.bands == (2, 3)
    assert mpv_adaptive_cost(lap) == (14, 300)
    assert glsl_adaptive_cost(lap) == (4, 85)
    assert mpv_cost(_design("laplacian").plan) == (7, 112)
    _, comb = adaptive_case("comb2")
    assert mpv_adaptive_cost(comb)[0] == 8


def test_adaptive_export_argument_checks():
    _, table = adaptive_case("comb2")
    with pytest.raises(ValueError, match="strength 1"):
        export_mpv_adaptive(table, "x", strength=0.5, runtime_strength=0.5)
    with pytest.raises(ValueError, match="0..4"):
        export_mpv_adaptive(table, "x", runtime_strength=5.0)
    text = export_mpv_adaptive(table, "x", runtime_strength=0.7)
    head = text[text.index("\n//!PARAM strength\n") + 1:].splitlines()[:6]
    assert head == ["//!PARAM strength", head[1], "//!TYPE float", "//!MINIMUM 0.0", "//!MAXIMUM 4.0", "0.7"]
    assert text.count("strength * (acc - x.rgb)") == 1
    assert "//!PARAM" not in export_mpv_adaptive(table, "x")  # the default stays loadable by mpv 0.35


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


def test_cli_export_mode(tmp_path, capsys):
    """Adaptive by default for laplacian/comb/auto, global for the other methods or with --mode global; the
    level-related flags are reported as unused in the adaptive mode; --mode adaptive needs a supported method."""
    out = tmp_path / "a.glsl"
    assert _cli(["export", "--format", "glsl", "--sigma", "1.2", "--noise", "0.01", "-o", str(out)]) == 0
    text = out.read_text()
    params = DeconvParams(sigma=1.2, noise=0.01)
    table = adaptive_table(params)
    assert text == export_glsl_adaptive(table, adaptive_description(params, table))
    assert capsys.readouterr().err == ""
    assert _cli(["export", "--format", "mpv", "--sigma", "0.3", "--noise", "0.01", "--strength", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "locally adaptive mode" in text and "method=comb" in text and "Comb(levels=2)" in text
    assert "Strength 0.5 is baked into the table" in text
    # runtime strength: the full-strength table, blended by the shader
    assert _cli(["export", "--format", "mpv", "--sigma", "1", "--noise", "0.01", "--strength", "0.5",
                 "--runtime-params"]) == 0
    p1 = DeconvParams(sigma=1.0, noise=0.01, strength=0.5)
    t1 = adaptive_table(p1)
    assert capsys.readouterr().out == export_mpv_adaptive(t1, adaptive_description(p1, t1), runtime_strength=0.5)
    # global mode: explicitly, or by the method
    for argv, params in ((["--mode", "global"], DeconvParams(sigma=1.2, noise=0.01)),
                         (["--method", "fir"], DeconvParams(sigma=1.2, noise=0.01, method="fir"))):
        assert _cli(["export", "--format", "mpv", "--sigma", "1.2", "--noise", "0.01", *argv]) == 0
        design = FilterDesigner().design(params)
        assert capsys.readouterr().out == export_mpv(design.plan, design_description(design))
    # the level is per pixel in the adaptive mode: said in one line, the export still written
    assert _cli(["export", "--format", "mpv", "--sigma", "1.2", "--noise", "0.01", "--level", "0.01",
                 "--min-gain", "0.5"]) == 0
    cap = capsys.readouterr()
    assert "//!TEXTURE GDC_TABLE" in cap.out
    assert cap.err.count("\n") == 1 and "--level, --min-gain are not used by the adaptive mode" in cap.err
    # a method the adaptive mode does not support: usage error, one line, nothing written
    bad = tmp_path / "bad.glsl"
    assert _cli(["export", "--format", "mpv", "--sigma", "1", "--noise", "0.01", "--method", "polyblur",
                 "--mode", "adaptive", "-o", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mode adaptive" in err and "polyblur" in err
    assert not bad.exists()
    # the halo limiter reaches the adaptive export; the global mode refuses it (one line, exit 2)
    assert _cli(["export", "--format", "glsl", "--sigma", "1.2", "--noise", "0.01", "--limiter", "0.25"]) == 0
    p2 = DeconvParams(sigma=1.2, noise=0.01)
    t2 = adaptive_table(p2)
    assert capsys.readouterr().out == export_glsl_adaptive(t2, adaptive_description(p2, t2), limiter=0.25)
    assert _cli(["export", "--format", "glsl", "--sigma", "1.2", "--noise", "0.01", "--limiter", "0.25",
                 "--mode", "global"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--limiter" in err
    # a sigma outside the comb's range is refused in the adaptive mode too
    assert _cli(["export", "--format", "glsl", "--sigma", "1.5", "--noise", "0.01", "--method", "comb"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
