"""Files that ship inside the package: templates, static files, catalogues, migrations, assets.

Found through `importlib.resources`, never the working directory: the same code runs from a
checkout (`pip install -e .`, where `petition/templates` and `petition/static` are symlinks to
the top-level folders) and from an installed wheel (where they are copies).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """The real path of a file or folder inside the installed `petition` package.

    Jinja2's loader, Starlette's StaticFiles, Alembic and weasyprint read files by path, so
    the package must be installed as files on disk (pip and uv always do), not run from a zip.
    """
    root = files("petition")
    if not isinstance(root, Path):
        raise RuntimeError(f"petition must be installed as files on disk, not read from {root!r}")
    return root.joinpath(*parts).resolve()
