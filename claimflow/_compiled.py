"""Whether the engine runs compiled by mypyc, and whether a compiled module is stale.

setup.py compiles MODULES to C extensions (unless CLAIMFLOW_PURE_PYTHON=1). Python imports an
extension in preference to the `.py` next to it, so in an editable install (`pip install -e .`,
what CI and developers use) an engine module edited after the build does not run: the old
compiled one does, silently. `stale()` finds those by modification time; the test suite stops
on them and the CLI warns. The check looks at files only and imports nothing, so it costs a
few `stat` calls (`claimflow --help` stays instant).

Standard library only: setup.py reads MODULES from this file before anything is installed.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

# The replay's hot path (setup.py explains the choice). Module names, relative to the repo.
MODULES = (
    "claimflow.engine.windows",
    "claimflow.engine.baseline",
    "claimflow.engine.stats",
    "claimflow.engine.transit",
    "claimflow.engine.dedupe",
    "claimflow.engine.alerts",
    "claimflow.engine.detector",
    "claimflow.engine.inflow",
    "claimflow.engine.hublink",
    "claimflow.engine.feedback",
    "claimflow.engine.sla_risk",
    "claimflow.engine.impact",
    "claimflow.engine.engine",
    "claimflow.deadlines",
    "claimflow.workhours",
    "claimflow.timeutil",
    "claimflow.tools.replay",
    "claimflow.tools.ahead",
    "claimflow.contract.rejections",
)

REBUILD = (
    "rebuild: pip install -e . ; or CLAIMFLOW_PURE_PYTHON=1 pip install -e . "
    "to run the engine as plain Python"
)

_PACKAGE = Path(__file__).resolve().parent


def _files(module: str, package: Path = _PACKAGE) -> tuple[Path, Path | None]:
    """The module's source and the extension that shadows it (None: there is none), found the
    way the import system finds them: an extension suffix first, then `.py`."""
    folder = package.joinpath(*module.split(".")[1:-1])
    name = module.rsplit(".", 1)[1]
    for suffix in EXTENSION_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.exists():
            return folder / f"{name}.py", candidate
    return folder / f"{name}.py", None


def compiled_on_disk() -> list[str]:
    """The modules of MODULES that have a compiled extension installed."""
    return [m for m in MODULES if _files(m)[1] is not None]


def running() -> str:
    """What the engine modules imported so far are: "compiled (mypyc)", "pure Python", or
    "mixed" (some of each: a partial build, which should not happen)."""
    loaded = [sys.modules[m] for m in MODULES if m in sys.modules]
    if not loaded:
        return "compiled (mypyc)" if compiled_on_disk() else "pure Python"
    compiled = [m for m in loaded if not str(getattr(m, "__file__", "")).endswith(".py")]
    if not compiled:
        return "pure Python"
    return "compiled (mypyc)" if len(compiled) == len(loaded) else "mixed"


def _installed_copy(package: Path) -> bool:
    """True when claimflow runs from an installed wheel (in site-packages), not a source tree.
    The installer writes each file as it unpacks it, so there a `.py` may be a moment newer
    than its extension without having been edited; sources are edited in a source tree."""
    folders = {
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
        *site.getsitepackages(),
    }
    return any(Path(f).resolve() in package.parents for f in folders if f)


def stale(package: Path = _PACKAGE) -> list[str]:
    """Compiled modules whose source was changed after they were built: the extension runs,
    not the source someone edited. Empty for a pure build and for an installed wheel."""
    if _installed_copy(package):
        return []
    found = []
    for module in MODULES:
        source, extension = _files(module, package)
        if extension is None or not source.exists():
            continue
        if source.stat().st_mtime > extension.stat().st_mtime:
            found.append(module)
    return found


def stale_message(modules: list[str]) -> str:
    return (
        f"claimflow: the compiled engine is older than its sources ({', '.join(modules)}): "
        f"the old compiled code would run, not the edited .py files. {REBUILD}"
    )
