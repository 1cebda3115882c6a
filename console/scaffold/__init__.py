"""`gpuops init`: a team's ops-as-code repository, made from the content gpuops ships (console/content.py),
with a README and a CI workflow.

The files are written whole in a temporary folder beside the target and then moved in; no file already there
is replaced, and a stop part-way leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from console.content import ALERTS, DASHBOARDS, EXAMPLE_CATALOG, RUNBOOKS, shipped

TEMPLATES = Path(__file__).resolve().parent
WORKFLOW = ".github/workflows/gpuops.yml"


class InitError(Exception):
    """The repository cannot be made there; nothing was written."""


def _tree(name: str, patterns: tuple[str, ...]) -> dict[str, bytes]:
    root = shipped(name)
    out = {}
    for pattern in patterns:
        for p in sorted(root.glob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts:
                out[f"{name}/{p.relative_to(root).as_posix()}"] = p.read_bytes()
    return out


def _template(name: str, **values: str) -> bytes:
    text = (TEMPLATES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text.encode()


def files(version: str, catalog: str | None = None) -> dict[str, bytes]:
    """Each file of the new repository by its path: `catalog` as fleet.yaml (a `catalog discover` draft), else
    the example catalog with the promtool tests written for it (a draft's own fleet needs its own tests)."""
    out = {EXAMPLE_CATALOG: catalog.encode() if catalog is not None else shipped(EXAMPLE_CATALOG).read_bytes()}
    out |= _tree(ALERTS, ("**/*.libsonnet",) + (() if catalog is not None else ("tests/*.yaml",)))
    out |= _tree(DASHBOARDS, ("*.py",))
    out |= _tree(RUNBOOKS, ("*.yaml", "drills/*.yaml"))
    origin = (
        "`fleet.yaml` was drafted from a cluster by `gpuops catalog discover`: replace its placeholders "
        "(`gpuops catalog check` lists them)."
        if catalog is not None
        else "`fleet.yaml` is gpuops' example fleet: replace it with yours (`gpuops catalog discover` drafts one)."
    )
    out["README.md"] = _template("README.md.in", VERSION=version, ORIGIN=origin)
    out[WORKFLOW] = _template("gpuops.yml.in", VERSION=version)
    out[".gitignore"] = _template("gitignore.in")
    return out


def create(target: Path, content: dict[str, bytes]) -> None:
    """Write `content` under `target` (made if missing; may exist, e.g. a fresh git clone). Refuses, writing
    nothing, when any of its files exists; on any failure or stop removes what it had placed."""
    target = target.absolute()
    if target.exists() and not target.is_dir():
        raise InitError(f"{target}: exists and is not a folder")
    clashes = [rel for rel in sorted(content) if (target / rel).exists() or (target / rel).is_symlink()]
    if clashes:
        shown = ", ".join(clashes[:5]) + (f" (+{len(clashes) - 5} more)" if len(clashes) > 5 else "")
        raise InitError(f"{target}: already has {shown}; nothing written")
    if not target.parent.is_dir():
        raise InitError(f"{target.parent}: no such folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.gpuops-init-", dir=target.parent))
    placed: list[Path] = []
    made: list[Path] = []
    try:
        for rel, data in content.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        tmp.chmod(0o777 & ~_umask())
        if not target.exists():
            os.rename(tmp, target)  # one step: the whole repository or none of it
            return
        for rel in sorted(content):
            dest = target / rel
            for parent in reversed(dest.relative_to(target).parents[:-1]):
                if not (target / parent).exists():
                    (target / parent).mkdir()
                    made.append(target / parent)
            placed.append(dest)  # before: a stop just after the link must still take it back
            try:
                _place(tmp / rel, dest)
            except FileExistsError:
                placed.pop()  # someone else's, made meanwhile
                raise
    except BaseException:
        for p in placed:
            p.unlink(missing_ok=True)
        for d in reversed(made):
            d.rmdir()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _place(src: Path, dest: Path) -> None:
    """`src` at `dest` whole, failing rather than replacing a file that appeared meanwhile: a hard link where
    the file system has them, else an exclusive create."""
    try:
        os.link(src, dest)
    except FileExistsError:
        raise
    except OSError:
        with dest.open("xb") as f:
            f.write(src.read_bytes())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
