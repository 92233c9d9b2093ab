"""Build claimflow with its replay engine compiled to C by mypyc (the way black and mypy ship).

Everything else about the package is declared in pyproject.toml; this file only adds the
extension modules. The engine stays plain, type-annotated Python: mypyc compiles those same
sources into one shared library (`claimflow__mypyc`, plus a small stub extension per module),
which makes a replay about a third faster. `CLAIMFLOW_PURE_PYTHON=1` builds without compiling,
for a platform without a C compiler or to debug the engine as plain Python.

In an editable install (`pip install -e .`), the compiled modules are written next to their
sources and shadow them: an edited engine module runs only after a rebuild. claimflow/_compiled.py
detects that (the test suite stops, the CLI warns).
"""

from __future__ import annotations

import os
import runpy
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent

# The replay's hot path: the engine, its detectors and the pure helpers they call per event.
# The list lives in claimflow/_compiled.py (the runtime checks use it too); read it by path,
# since claimflow is not importable (nor its dependencies installed) while it is built.
# Modules that define pydantic models (config, contract) or the wire types msgspec decodes
# into (events) stay plain Python; a msgspec.Struct subclass in a compiled module becomes an
# ordinary Python class inside it.
MODULES: tuple[str, ...] = runpy.run_path(str(HERE / "claimflow" / "_compiled.py"))["MODULES"]


def _pure() -> bool:
    return os.environ.get("CLAIMFLOW_PURE_PYTHON", "").strip() not in ("", "0")


def _remove_in_tree_extensions(keep: tuple[str, ...]) -> None:
    """Remove compiled modules left in the source tree by an earlier editable build, except
    those about to be rebuilt (`keep`): Python imports an extension in preference to the .py
    next to it, so after a pure build, or once a module leaves MODULES, one left behind would
    run instead of its source (or fail to load from a library that no longer has it)."""
    for built in sorted((HERE / "claimflow").rglob("*")):
        suffix = next((s for s in EXTENSION_SUFFIXES if built.name.endswith(s)), None)
        if suffix is None:
            continue
        parts = built.relative_to(HERE).parts
        module = ".".join((*parts[:-1], built.name.removesuffix(suffix)))
        if module not in keep:
            print(f"claimflow: removing {built.relative_to(HERE)}", file=sys.stderr)
            built.unlink()
    if not keep:
        for shared in HERE.glob("claimflow__mypyc.*"):
            if any(shared.name.endswith(s) for s in EXTENSION_SUFFIXES):
                print(f"claimflow: removing {shared.relative_to(HERE)}", file=sys.stderr)
                shared.unlink()


def _ext_modules() -> list[object]:
    if _pure():
        print("claimflow: CLAIMFLOW_PURE_PYTHON set, building without mypyc", file=sys.stderr)
        _remove_in_tree_extensions(keep=())
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 (a pure build needs no mypy)

    _remove_in_tree_extensions(keep=MODULES)
    # mypy type-checks the whole import closure with pyproject.toml's [tool.mypy] (strict);
    # a type error fails the build, as it should: mypyc relies on the annotations at run time.
    paths = [str(Path(*m.split(".")).with_suffix(".py")) for m in MODULES]
    return mypycify(
        ["--config-file", str(HERE / "pyproject.toml"), *paths],
        group_name="claimflow",  # one shared library, claimflow__mypyc, not a hash
        opt_level="3",
        debug_level="0",
    )


setup(ext_modules=_ext_modules())
