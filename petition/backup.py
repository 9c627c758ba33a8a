"""`petition backup` and `petition restore`: the database and the files petition keeps in DATA_DIR.

A backup is a directory, private to the service's user (0700, files 0600: it holds every
contact's address and, with the embedded default, the keys that let someone act as the
service):

    manifest.json        petition's version, the Alembic revision, the backend, when, and
                         every other file with its size and SHA-256
    database.sqlite      SQLite: a copy made with SQLite's online backup API
    database.pgdump      PostgreSQL: `pg_dump --format=custom`
    data/...             DATA_DIR's files: dossier PDFs, the self-signed signing certificate,
                         the generated secret key (not the database, nor the .eml files)

Both database copies are one consistent snapshot, taken while petition runs. The database
is copied first and the files after: a dossier is written to its file before its row says
"done", so every finished dossier in the copy has its file in the backup.

A restore checks the whole backup against its manifest before it writes anything, and
goes into a database and a DATA_DIR that hold nothing yet (unless forced).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from petition.db import create_sqlite_file, sqlite_file
from petition.settings import PRIVATE_FILE_MODE, Settings, private_directory

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_COPY = "database.sqlite"
POSTGRES_DUMP = "database.pgdump"
DATA = "data"
_CHUNK = 1024 * 1024
# DATA_DIR's outgoing mail (.eml, written when no SMTP_HOST is set) is a copy of what was sent:
# not needed to run, and personal data a backup need not spread further.
_NOT_BACKED_UP = ("mail",)


class BackupError(RuntimeError):
    """The backup cannot be made, or a backup cannot be restored; the message says why."""


@dataclass(frozen=True)
class BackupFile:
    path: str  # relative to the backup directory, with "/"
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    petition_version: str
    alembic_revision: str
    backend: str  # "sqlite" | "postgresql"
    created_at: str
    data_dir: str  # where the files were: dossier rows name their files by full path
    files: tuple[BackupFile, ...]

    @property
    def database_file(self) -> str:
        return SQLITE_COPY if self.backend == "sqlite" else POSTGRES_DUMP

    @property
    def data_files(self) -> tuple[BackupFile, ...]:
        return tuple(f for f in self.files if f.path.startswith(DATA + "/"))

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "petition_version": self.petition_version,
            "alembic_revision": self.alembic_revision,
            "backend": self.backend,
            "created_at": self.created_at,
            "data_dir": self.data_dir,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Outcome:
    directory: Path
    manifest: Manifest
    manifest_sha256: str


def backend_of(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def petition_version() -> str:
    try:
        return importlib.metadata.version("petition")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
        return "unknown"


# --- files ---------------------------------------------------------------------------------------


def _copy_private(source: Path, target: Path) -> BackupFile:
    """Copy `source` to a new `target` made 0600; size and SHA-256 of the bytes written."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return BackupFile(str(target), size, digest.hexdigest())


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _database_files(settings: Settings) -> set[Path]:
    path = sqlite_file(settings.database_url) if settings.is_sqlite else None
    if path is None:
        return set()
    path = path.resolve()
    return {path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))}


def data_dir_files(settings: Settings) -> list[PurePosixPath]:
    """The files of DATA_DIR a backup holds, relative to it: everything petition keeps there
    but the SQLite database (copied through SQLite), the outgoing mail, and the temporary files
    (".name...") that files are written under before they are renamed into place."""
    root = settings.data_dir
    if not root.is_dir():
        return []
    skip = _database_files(settings)
    found = []
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory)
        if here == root:
            subdirectories[:] = [d for d in subdirectories if d not in _NOT_BACKED_UP]
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(names):
            path = here / name
            # Regular files only: a link could point anywhere on the machine.
            if name.startswith(".") or path.resolve() in skip or not stat.S_ISREG(path.lstat().st_mode):
                continue
            found.append(PurePosixPath(path.relative_to(root).as_posix()))
    return found


# --- PostgreSQL's tools --------------------------------------------------------------------------


def _postgres_tool(name: str) -> str:
    """`pg_dump` or `pg_restore`: from PATH (Debian's wrapper picks the newest client installed),
    else the newest of /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return str(candidates[-1])
    raise BackupError(
        f"{name} not found: install PostgreSQL's client tools (Debian: apt-get install postgresql-client)"
    )


def _libpq_environment(database_url: str) -> tuple[dict[str, str], str]:
    """The environment for pg_dump/pg_restore and the database's name, from DATABASE_URL.

    The password goes in the child's environment (readable by this user only), never on its
    command line, where `ps` shows it to everyone; URL options meant for asyncpg are left out.
    """
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query = {k: (v if isinstance(v, str) else v[-1]) for k, v in url.query.items()}
    host = url.host or query.get("host")
    for key, value in (
        ("PGHOST", host),
        ("PGPORT", str(url.port) if url.port else query.get("port")),
        ("PGUSER", url.username or query.get("user")),
        ("PGPASSWORD", url.password or query.get("password")),
        ("PGSSLMODE", query.get("sslmode") or {"true": "require"}.get(query.get("ssl", ""), query.get("ssl"))),
    ):
        if value:
            env[key] = str(value)
    env["PGAPPNAME"] = "petition-backup"
    env["PGCONNECT_TIMEOUT"] = "10"
    if not url.database:
        raise BackupError("DATABASE_URL names no database")
    return env, url.database


def _run(command: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, umask=0o077, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip() or f'exit status {result.returncode}'}")
    return result.stdout


def _major(version_text: str) -> int:
    found = re.search(r"\b(\d+)(?:\.\d+)?", version_text)
    if not found:
        raise BackupError(f"cannot read the version of {version_text!r}")
    return int(found.group(1))


async def _server_major(database_url: str) -> int:
    from petition.db import Database

    db = Database(database_url)
    try:
        await db.connect()
    except Exception as exc:  # noqa: BLE001 - any reason: say it
        raise BackupError(f"cannot connect to the database: {type(exc).__name__}: {exc}") from exc
    try:
        return int(await db.fetch_val("SHOW server_version_num")) // 10000
    finally:
        await db.disconnect()


def _revision_in_dump(dump: Path) -> str:
    """The Alembic revision a dump holds, read from the file (no database needed)."""
    env, _name = _libpq_environment("postgresql:///unused")
    script = _run(
        [_postgres_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(dump)],
        env,
        "pg_restore (reading the dump)",
    )
    rows = re.search(r"^COPY \S*alembic_version \(version_num\) FROM stdin;\n(.*?)^\\\.$", script, re.M | re.S)
    revisions = rows.group(1).split() if rows else []
    if len(revisions) != 1:
        raise BackupError("the database dump holds no Alembic revision: is it a petition database?")
    return revisions[0]


def _revision_in_sqlite(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database copy cannot be read: {exc}") from exc
    finally:
        conn.close()
    if len(rows) != 1:
        raise BackupError("the database copy holds no Alembic revision: is it a petition database?")
    return str(rows[0][0])


# --- backup --------------------------------------------------------------------------------------


def _backup_sqlite(settings: Settings, target: Path) -> None:
    source_path = sqlite_file(settings.database_url)
    if source_path is None or not source_path.is_file():
        raise BackupError(f"no SQLite database at {source_path or settings.database_url}")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    os.close(fd)
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        # One step (pages=-1): a single read transaction, so the copy is one moment of the
        # database; in WAL mode petition's writers go on meanwhile.
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    finally:
        copy.close()
        source.close()


def _backup_postgres(settings: Settings, target: Path) -> None:
    pg_dump = _postgres_tool("pg_dump")
    env, name = _libpq_environment(settings.database_url)
    client = _major(_run([pg_dump, "--version"], env, "pg_dump --version"))
    server = asyncio.run(_server_major(settings.database_url))
    if client < server:
        raise BackupError(
            f"{pg_dump} is version {client} and cannot dump a PostgreSQL {server} server: install "
            f"the client tools of version {server} or newer (Debian: postgresql-client-{server})"
        )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    os.close(fd)  # pg_dump truncates and keeps the mode
    # One transaction (pg_dump's own snapshot): consistent while petition writes.
    _run([pg_dump, "--format=custom", "--no-password", f"--file={target}", name], env, "pg_dump")


def create_backup(settings: Settings, out: Path) -> Outcome:
    """Back up the database and DATA_DIR's files into the new directory `out`."""
    out = out.expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty directory: back up into a new one")
    if out.resolve().is_relative_to(settings.data_dir):
        raise BackupError(f"{out} is inside DATA_DIR ({settings.data_dir}): back up somewhere else")
    private_directory(out.parent)
    # Made under a temporary name and renamed when whole: a directory named `out` is a
    # finished backup.
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    try:
        backend = backend_of(settings)
        database = staging / (SQLITE_COPY if backend == "sqlite" else POSTGRES_DUMP)
        if backend == "sqlite":
            _backup_sqlite(settings, database)
            revision = _revision_in_sqlite(database)
        else:
            _backup_postgres(settings, database)
            revision = _revision_in_dump(database)
        size, digest = _hash_file(database)
        files = [BackupFile(database.name, size, digest)]
        for relative in data_dir_files(settings):
            target = staging / DATA / relative
            private_directory(target.parent)
            try:
                copied = _copy_private(settings.data_dir / relative, target)
            except FileNotFoundError:
                continue  # removed since the directory was read
            files.append(BackupFile(f"{DATA}/{relative}", copied.size, copied.sha256))
        manifest = Manifest(
            petition_version=petition_version(),
            alembic_revision=revision,
            backend=backend,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            data_dir=str(settings.data_dir),
            files=tuple(files),
        )
        body = manifest.to_json()
        fd = os.open(staging / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(staging, out)  # replaces `out` only if it is an empty directory
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Outcome(out, manifest, hashlib.sha256(body).hexdigest())


# --- checking a backup ---------------------------------------------------------------------------


def _safe_relative(path: object) -> str:
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        raise BackupError(f"the manifest names a file it must not: {path!r}")
    parts = PurePosixPath(path).parts
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or "/".join(parts) != path:
        raise BackupError(f"the manifest names a file outside the backup: {path!r}")
    if parts[0] not in (SQLITE_COPY, POSTGRES_DUMP, DATA) or (parts[0] == DATA) == (len(parts) == 1):
        raise BackupError(f"the manifest names a file a backup does not hold: {path!r}")
    return path


def _read_manifest(directory: Path) -> tuple[Manifest, str]:
    path = directory / MANIFEST
    if not path.is_file() or path.is_symlink():
        raise BackupError(f"{directory} holds no {MANIFEST}: not a petition backup, or not a finished one")
    body = path.read_bytes()
    try:
        raw = json.loads(body)
        if raw.get("format") != FORMAT:
            raise BackupError(f"{MANIFEST}: format {raw.get('format')!r}, this petition reads format {FORMAT}")
        files = tuple(
            BackupFile(_safe_relative(f["path"]), int(f["size"]), str(f["sha256"]).lower()) for f in raw["files"]
        )
        manifest = Manifest(
            petition_version=str(raw["petition_version"]),
            alembic_revision=str(raw["alembic_revision"]),
            backend=str(raw["backend"]),
            created_at=str(raw["created_at"]),
            data_dir=str(raw["data_dir"]),
            files=files,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{MANIFEST} cannot be read: {exc}") from exc
    if manifest.backend not in ("sqlite", "postgresql"):
        raise BackupError(f"{MANIFEST}: unknown backend {manifest.backend!r}")
    names = [f.path for f in files]
    if len(set(names)) != len(names) or [n for n in names if "/" not in n] != [manifest.database_file]:
        raise BackupError(f"{MANIFEST} must list its one database file ({manifest.database_file}) and each file once")
    return manifest, hashlib.sha256(body).hexdigest()


def _present(directory: Path) -> Iterator[str]:
    for here, subdirectories, names in os.walk(directory):
        for name in sorted(subdirectories + names):
            path = Path(here) / name
            relative = path.relative_to(directory).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise BackupError(f"{relative}: not a plain file or directory; a backup holds none")
            if stat.S_ISREG(mode) and relative != MANIFEST:
                yield relative


def verify_backup(directory: Path, *, manifest_sha256: str | None = None) -> Manifest:
    """The backup's manifest, once every file is as it says; BackupError otherwise."""
    # The directory may be reached through a link ("latest"); links inside it are refused.
    directory = directory.resolve()
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a directory")
    manifest, digest = _read_manifest(directory)
    if manifest_sha256 and manifest_sha256.strip().lower() != digest:
        raise BackupError(f"{MANIFEST} is not the one expected: its SHA-256 is {digest}")
    listed = {f.path: f for f in manifest.files}
    extra = sorted(set(_present(directory)) - set(listed))
    if extra:
        raise BackupError(f"files not in the manifest: {', '.join(extra[:5])}; the backup was changed")
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise BackupError(f"{entry.path} is missing")
        if _hash_file(path) != (entry.size, entry.sha256):
            raise BackupError(f"{entry.path} is not the file that was backed up (size or SHA-256 differ)")
    _check_revision(manifest)
    database = directory / manifest.database_file
    found = _revision_in_sqlite(database) if manifest.backend == "sqlite" else _revision_in_dump(database)
    if found != manifest.alembic_revision:
        raise BackupError(f"the database is at revision {found}, the manifest says {manifest.alembic_revision}")
    return manifest


def _check_revision(manifest: Manifest) -> None:
    from alembic.script import ScriptDirectory

    from petition.migrations.runner import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        known = scripts.get_revision(manifest.alembic_revision)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        known = None
    if known is None:
        raise BackupError(
            f"the backup's database is at revision {manifest.alembic_revision}, which this release "
            f"of petition ({petition_version()}) does not know: restore it with the release that made "
            f"it ({manifest.petition_version}) or a newer one"
        )


# --- restore -------------------------------------------------------------------------------------


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists():
        return False
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not an SQLite database: {exc}") from exc
    finally:
        conn.close()


async def _postgres_has_tables(database_url: str) -> bool:
    from petition.db import Database

    db = Database(database_url)
    try:
        await db.connect()
    except Exception as exc:  # noqa: BLE001 - any reason: say it
        raise BackupError(
            f"cannot connect to the database ({type(exc).__name__}: {exc}); create an empty one first, "
            "e.g. `createdb --owner=petition petition`"
        ) from exc
    try:
        count = await db.fetch_val(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
        )
        return bool(count)
    finally:
        await db.disconnect()


def _data_dir_is_empty(settings: Settings) -> bool:
    if not settings.data_dir.exists():
        return True
    skip = _database_files(settings)
    for _here, _subdirectories, names in os.walk(settings.data_dir):
        if any((Path(_here) / name).resolve() not in skip for name in names):
            return False
    return True


def _restore_sqlite(settings: Settings, copy: Path) -> None:
    target = sqlite_file(settings.database_url)
    if target is None:
        raise BackupError("DATABASE_URL names no SQLite file to restore into")
    create_sqlite_file(settings.database_url)  # 0600, in a 0700 directory
    source = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)
    database = sqlite3.connect(target, timeout=30)
    try:
        # Through SQLite, not a file copy: any -wal of the target stays consistent with it.
        source.backup(database)
    finally:
        database.close()
        source.close()


def _restore_postgres(settings: Settings, dump: Path, *, force: bool) -> None:
    env, name = _libpq_environment(settings.database_url)
    command = [
        _postgres_tool("pg_restore"),
        "--single-transaction",  # all or nothing
        "--exit-on-error",
        "--no-owner",  # the tables belong to DATABASE_URL's user, as if petition had made them
        "--no-privileges",
        "--no-password",
        f"--dbname={name}",
    ]
    if force:
        command += ["--clean", "--if-exists"]
    _run([*command, str(dump)], env, "pg_restore")


async def _move_dossier_paths(settings: Settings, old_data_dir: str) -> int:
    """Dossier rows name their file by full path: point those under the old DATA_DIR to the new."""
    from petition.db import Database
    from petition.dossiers.tables import dossiers

    old = old_data_dir.rstrip("/") + "/"
    new = str(settings.data_dir).rstrip("/") + "/"
    if old == new:
        return 0
    db = Database(settings.database_url)
    await db.connect()
    try:
        rows = await db.fetch_all(dossiers.select().where(dossiers.c.file_path.is_not(None)))
        moved = [(row["id"], new + row["file_path"][len(old) :]) for row in rows if row["file_path"].startswith(old)]
        async with db.write():
            for dossier_id, path in moved:
                await db.execute(dossiers.update().where(dossiers.c.id == dossier_id).values(file_path=path))
        return len(moved)
    finally:
        await db.disconnect()


def restore_backup(
    settings: Settings, directory: Path, *, force: bool = False, manifest_sha256: str | None = None
) -> Manifest:
    """Restore a backup into the configured database and DATA_DIR, which must hold nothing unless `force`.

    Nothing is written until the whole backup is verified and the targets are found empty.
    """
    directory = directory.resolve()
    manifest = verify_backup(directory, manifest_sha256=manifest_sha256)
    backend = backend_of(settings)
    if manifest.backend != backend:
        raise BackupError(
            f"this is a backup of a {manifest.backend} database and DATABASE_URL is {backend}: "
            "restore it into the same kind of database"
        )
    if not force:
        if backend == "sqlite":
            path = sqlite_file(settings.database_url)
            occupied = path is not None and _sqlite_has_tables(path)
        else:
            occupied = asyncio.run(_postgres_has_tables(settings.database_url))
        if occupied:
            raise BackupError(
                "the database is not empty: restore into a new one, or give --force to replace "
                "what it holds (stop every petition process first)"
            )
        if not _data_dir_is_empty(settings):
            raise BackupError(
                f"DATA_DIR ({settings.data_dir}) is not empty: restore into a new one, or give --force "
                "to write the backup's files over it"
            )
    database = directory / manifest.database_file
    if backend == "sqlite":
        _restore_sqlite(settings, database)
    else:
        _restore_postgres(settings, database, force=force)
    private_directory(settings.data_dir)
    for entry in manifest.data_files:
        target = settings.data_dir / PurePosixPath(entry.path).relative_to(DATA)
        private_directory(target.parent)
        staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            _copy_private(directory / entry.path, staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
    asyncio.run(_move_dossier_paths(settings, manifest.data_dir))
    return manifest
