"""Static files under content-hashed names: `/static/css/site.3f2a9c1d.css` with a year's caching.

`static_url("css/site.css")` (a template global) names the file by a digest of its bytes, so
a new release's file has a new name and a browser may keep each name for ever (`immutable`).
The plain names keep working, with a short cache, for links from outside (emails, old pages).
The digests are read once, when the application starts: static files change only with a
release, and a release restarts the processes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IMMUTABLE = "public, max-age=31536000, immutable"
#: The plain names: a day, then the browser asks again (with the ETag StaticFiles gives).
PLAIN = "public, max-age=86400"


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=6).hexdigest()


class HashedStatic(StaticFiles):
    """StaticFiles that also serves each file under its hashed name, which it maps back."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=str(directory))
        self.root = directory
        #: Plain relative path → hashed relative path, and back.
        self.hashed: dict[str, str] = {}
        self._plain: dict[str, str] = {}
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                relative = path.relative_to(directory).as_posix()
                stem, dot, ext = relative.rpartition(".")
                hashed = f"{stem}.{_digest(path)}.{ext}" if dot else f"{relative}.{_digest(path)}"
                self.hashed[relative] = hashed
                self._plain[hashed] = relative

    def url(self, relative: str) -> str:
        """`/static/<hashed name>` (the plain name for a file it does not know)."""
        return "/static/" + self.hashed.get(relative, relative)

    def get_path(self, scope: Scope) -> str:
        path = super().get_path(scope)
        plain = self._plain.get(path.replace("\\", "/"))
        if plain is not None:
            scope.setdefault("state", {})["static_hashed"] = True
            return plain
        return path

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            hashed = scope.get("state", {}).get("static_hashed")
            response.headers["Cache-Control"] = IMMUTABLE if hashed else PLAIN
        return response
