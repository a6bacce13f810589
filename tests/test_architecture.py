"""The package's architecture, checked: no import cycles, layers that only look down, parameters declared once.

* Every module imports on its own, in a fresh interpreter (an import cycle or a hidden order dependency
  fails there), and the module-level import graph has no cycle at all (imports inside functions - the lazy
  ones - are not edges: they run after every module has loaded).
* Layers: ``core`` (maths) imports nothing from ``gl``, ``io`` or ``apps`` and no GL or codec library at
  module level; ``gl`` imports nothing from ``io`` or ``apps``; ``io`` nothing from ``gl`` or ``apps``.
* Start-up: ``import gpu_deconv`` and building the command line load neither scipy, moderngl nor codecs.
* Parameters: every :class:`DeconvParams` field has a flag in ``run``, ``view`` and ``export`` whose help
  shows its default and its range, and the flags parse back into the same parameters.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gpu_deconv.core.params import DeconvParams, param_specs

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "gpu_deconv"


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = f.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


MODULES = _modules()


def _module_level_imports(name: str, path: Path) -> set[str]:
    """Modules of gpu_deconv that ``name`` imports at module level (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(stmts) -> None:
        for node in stmts:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                found.add(mod)
                for a in node.names:  # `from . import x` may name a sub-module
                    if f"{mod}.{a.name}" in MODULES:
                        found.add(f"{mod}.{a.name}")

    visit(tree.body)
    return found


GRAPH = {name: _module_level_imports(name, path) for name, path in MODULES.items()}


def test_every_module_imports_on_its_own():
    def one(name: str) -> tuple[str, str]:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        return name, proc.stderr.strip().splitlines()[-1] if proc.returncode else ""

    with ThreadPoolExecutor(4) as pool:
        failed = [f"{n}: {err}" for n, err in pool.map(one, MODULES) if err]
    assert not failed, "\n".join(failed)


def test_no_import_cycle_at_module_level():
    internal = {n: {m for m in deps if m in MODULES and m != n} for n, deps in GRAPH.items()}
    # a package's __init__ importing its own sub-modules is not a cycle through its children
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(internal[n]):
            if n.startswith(m + ".") and m.count(".") < n.count("."):
                continue  # importing a sub-module implies its parent packages; not an edge back
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                dfs(m)
        stack.pop()
        state[n] = 2

    for n in internal:
        if n not in state:
            dfs(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer, forbidden", [
    ("gpu_deconv.core", ("gpu_deconv.gl", "gpu_deconv.io", "gpu_deconv.apps", "moderngl", "glfw", "imgui_bundle",
                         "PIL", "tifffile", "av", "imageio")),
    ("gpu_deconv.gl", ("gpu_deconv.io", "gpu_deconv.apps")),
    ("gpu_deconv.io", ("gpu_deconv.gl", "gpu_deconv.apps", "moderngl")),
])
def test_layers_only_look_down(layer, forbidden):
    bad = [f"{n} imports {m}" for n, deps in GRAPH.items() if n == layer or n.startswith(layer + ".")
           for m in deps if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert not bad, bad


def test_start_up_loads_no_heavy_library():
    code = ("import sys, gpu_deconv, gpu_deconv.apps.cli as c; c.build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'scipy', 'moderngl', 'glcontext', 'PIL', 'tifffile', 'imageio', 'av', 'imagecodecs', 'tqdm', 'numpy', "
            "'ray'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"loaded at start-up: {out.stdout.strip()}"


def _parsers() -> dict[str, object]:
    from gpu_deconv.apps.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: sub.choices[name] for name in ("run", "view", "export", "fit", "demo")}


@pytest.mark.parametrize("command", ["run", "view", "export", "fit", "demo"])
def test_every_param_has_a_flag_whose_help_shows_default_and_range(command):
    parser = _parsers()[command]
    actions = {a.dest: a for a in parser._actions}
    for name, (spec, default) in param_specs().items():
        assert name in actions, f"{command}: no flag for DeconvParams.{name}"
        a = actions[name]
        assert f"--{name.replace('_', '-')}" in a.option_strings
        assert a.default is None  # "not given": a --params file's value survives
        shown = str(spec.optional) if default is None else (f"{default:g}" if isinstance(default, float)
                                                             else str(default))
        assert f"default: {shown}" in a.help, f"{command} --{name}: {a.help}"
        assert spec.range_text().replace("%", "%%") in a.help, f"{command} --{name}: {a.help}"


def test_flags_parse_into_the_params_they_name():
    from gpu_deconv.apps.flags import params_from_args

    parser = _parsers()["fit"]
    args = parser.parse_args(["--sigma", "0.7", "--noise", "auto", "--method", "comb", "--comb-levels", "3",
                              "--fir-taps", "9", "--level", "0.002", "--precision", "32", "--space", "linear"])
    p = params_from_args(args)
    assert p == DeconvParams(sigma=0.7, noise="auto", method="comb", comb_levels=3, fir_taps=9, level=0.002,
                             precision=32, space="linear")


@pytest.mark.parametrize("field, bad", [("sigma", 5.0), ("noise", 2.0), ("strength", -1.0), ("fir_taps", 8),
                                        ("polyblur_alpha", 1e300), ("binomial_order", 3), ("level", 0.0)])
def test_validation_messages_quote_the_declared_range(field, bad):
    spec, _ = param_specs()[field]
    with pytest.raises(ValueError) as e:
        DeconvParams(**{field: bad})
    msg = str(e.value)
    assert field in msg and repr(bad) in msg or f"{bad:g}" in msg
    if field != "sigma":  # sigma's range depends on the blur model; the message names it
        assert spec.range_text() in msg
    else:
        assert "0.1..4 px" in msg and "gaussian" in msg


def test_cli_format_choices_are_the_image_formats():
    """``run --format`` spells the formats out so --help loads no codec; they must stay the codecs' list."""
    from gpu_deconv.apps.cli import IMAGE_FORMATS
    from gpu_deconv.io.images import DEFAULT_MAX_PIXELS, FORMATS

    assert IMAGE_FORMATS == FORMATS
    parser = _parsers()["run"]
    assert next(a for a in parser._actions if a.dest == "max_pixels").default == DEFAULT_MAX_PIXELS


def test_the_engine_class_stays_small():
    """The engine is the frame path and its ownership; passes, frames and modes live in their own modules
    (issue #10: ``Deconvolver`` <= 400 lines, docstrings included)."""
    tree = ast.parse((PKG / "gl" / "engine.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Deconvolver")
    assert cls.end_lineno - cls.lineno + 1 <= 400
