"""The `petition` command (contract in DESIGN.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
import sqlalchemy as sa

from petition.settings import Settings, SettingsError, load_settings, private_directory, write_private_file

if TYPE_CHECKING:  # imported where used: each command loads only what it needs
    from petition.db import Database

T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(".env", **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _base_url_configured() -> bool:
    if os.environ.get("BASE_URL"):
        return True
    env_file = Path(".env")
    return env_file.exists() and any(line.strip().startswith("BASE_URL=") for line in env_file.read_text().splitlines())


def _logging(level: int = logging.INFO, settings: Settings | None = None) -> None:
    from petition.logs import configure

    configure(settings.log_format if settings else "text", level)


def _wait_for_database(settings: Settings) -> None:
    """Wait (DATABASE_WAIT_SECONDS, logging why) for PostgreSQL to answer; then a clear exit."""
    from petition.db import DatabaseUnavailable, wait_for_database

    try:
        asyncio.run(wait_for_database(settings.database_url, settings.database_wait_seconds))
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None


async def _with_db(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    from petition.db import Database

    db = Database(settings.database_url, pool_size=settings.database_pool_size, application_name="petition-cli")
    await db.connect()
    try:
        return await action(db)
    finally:
        await db.disconnect()


@click.group()
def main() -> None:
    """petition: organisations endorse an appeal; organisers export signed dossiers."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--http",
    "http",
    type=click.Choice(["auto", "httptools", "h11"]),
    default="auto",
    show_default=True,
    help="HTTP parser: httptools (C, from uvicorn[standard]) when installed, or h11 (pure Python).",
)
@click.option(
    "--loop",
    "loop",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed, or the standard library's asyncio.",
)
def serve(host: str, port: int, http: str, loop: str) -> None:
    """Run the web application (migrates the database first; runs the outbox worker in-process)."""
    import uvicorn

    settings = _settings()
    if not _base_url_configured():
        # Links in emails must reach this server; without BASE_URL, that is where it listens.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        settings = dataclasses.replace(settings, base_url=f"http://{shown}:{port}")
    _logging(settings=settings)
    from petition.app import create_app
    from petition.migrations.runner import upgrade

    _wait_for_database(settings)
    upgrade(settings.database_url)
    app = create_app(settings)
    # What exists now (modules, templates, catalogues) lives as long as the process: moved out
    # of the collector's sight, every collection under load has that much less to scan.
    gc.collect()
    gc.freeze()
    from petition.server import uvicorn_config

    config = uvicorn_config(app, settings, host=host, port=port, http=http, loop=loop, log_level="info")
    uvicorn.Server(config).run()


@main.command()
def worker() -> None:
    """Run a background worker: sends the outbox, builds dossiers, appends the public log and checks
    domain proofs (several may run side by side)."""
    from petition.db import Database
    from petition.dossiers.jobs import DossierWorker
    from petition.identity.worker import DomainProofWorker
    from petition.operations.heartbeats import Heartbeats
    from petition.outbox.transports import make_transport
    from petition.outbox.worker import OutboxWorker
    from petition.privacy.housekeeping import Housekeeper
    from petition.transparency.worker import LogWorker

    settings = _settings()
    _logging(settings=settings)
    _wait_for_database(settings)

    async def run() -> None:
        db = Database(settings.database_url, pool_size=settings.database_pool_size, application_name="petition-worker")
        await db.connect()
        outbox_worker = OutboxWorker(db, settings, make_transport(settings))
        housekeeper = Housekeeper(db, settings)
        dossier_worker = DossierWorker(db, settings)
        log_worker = LogWorker(db, settings)
        proof_worker = DomainProofWorker(db, settings)
        heartbeats = Heartbeats(db, [outbox_worker, dossier_worker, log_worker, proof_worker])

        def stop() -> None:
            outbox_worker.stop()
            housekeeper.stop()
            dossier_worker.stop()
            log_worker.stop()
            proof_worker.stop()
            heartbeats.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            await asyncio.gather(
                outbox_worker.run(),
                housekeeper.run(),
                dossier_worker.run(),
                log_worker.run(),
                proof_worker.run(),
                heartbeats.run(),
            )
        finally:
            await db.disconnect()

    asyncio.run(run())


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from petition.migrations.runner import upgrade

    settings = _settings()
    if settings.is_sqlite:
        from petition.db import create_sqlite_file

        private_directory(settings.data_dir)
        create_sqlite_file(settings.database_url)  # 0600 before Alembic makes it
    upgrade(settings.database_url, revision)
    click.echo("database is up to date" if revision == "head" else f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    from petition.migrations.runner import downgrade

    downgrade(_settings().database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def moderate() -> None:
    """Moderation from the command line."""


@moderate.command("approve")
@click.option("--appeal", "slug", required=True, help="The appeal's slug.")
@click.option("--all-confirmed", is_flag=True, required=True, help="Approve every confirmed endorsement.")
def moderate_approve(slug: str, all_confirmed: bool) -> None:
    """Approve the confirmed endorsements waiting for review (audited, with no organiser)."""
    from petition.appeals.queries import get_appeal
    from petition.endorsements.lifecycle import Lifecycle
    from petition.outbox.messages import Mailer

    settings = _settings()

    async def action(database: Database) -> int:
        appeal = await get_appeal(database, slug=slug)
        if appeal is None:
            raise click.ClickException(f"no appeal with the slug {slug!r}")
        # No public cache in this process to tell: the web processes' caches catch up within their lifetime.
        lifecycle = Lifecycle(database, Mailer(settings))
        return await lifecycle.approve_all_confirmed(appeal_id=appeal["id"])

    count = asyncio.run(_with_db(settings, action))
    click.echo(f"approved {count} endorsement(s)")


@main.command()
@click.option(
    "--days",
    type=int,
    default=None,
    help="Keep unconfirmed endorsements this many days (default: UNCONFIRMED_RETENTION_DAYS).",
)
def purge(days: int | None) -> None:
    """Delete unconfirmed endorsements and their emails after the retention period (the worker
    also does this periodically), old delivered emails, and expired rate-limit counters."""
    from petition.privacy.queries import PurgeResult, purge_unconfirmed

    settings = _settings()
    retention = settings.unconfirmed_retention_days if days is None else days
    if retention < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--days")

    async def action(database: Database) -> PurgeResult:
        return await purge_unconfirmed(database, retention_days=retention)

    result = asyncio.run(_with_db(settings, action))
    click.echo(
        f"purged {result.endorsements} unconfirmed endorsement(s), {result.withdrawn} withdrawn "
        f"endorsement(s), {result.submissions} unconfirmed later submission(s), {result.emails} email(s), "
        f"{result.rate_events} rate-limit record(s)"
    )


@main.group(name="log")
def log_group() -> None:
    """The public log of listings and withdrawals (docs/transparency.md)."""


@log_group.command()
def backfill() -> None:
    """Queue log entries for every endorsement listed before the log existed (once, after the
    upgrade that adds it); the worker appends them. Running it again queues nothing new."""
    from petition.endorsements.public_record import note_public_changes
    from petition.endorsements.tables import endorsements

    async def action(database: Database) -> int:
        ids = [int(row[0]) for row in await database.fetch_values(sa.select(endorsements.c.id).order_by("id"))]
        noted = 0
        for at in range(0, len(ids), 2000):
            async with database.write():
                noted += await note_public_changes(database, ids[at : at + 2000])
        return noted

    click.echo(f"queued {asyncio.run(_with_db(_settings(), action))} log entr(ies)")


@log_group.command(name="audit")
@click.option("--url", required=True, help="The site's BASE_URL.")
@click.option("--state", type=click.Path(dir_okay=False), help="Where the last good checkpoint and key are kept.")
@click.option("--key", help="The verifier key to trust (else the one kept in --state, else the site's).")
def audit_log(url: str, state: str | None, key: str | None) -> None:
    """Audit a site's public log: signatures, the tree, consistency with the last run, and the
    public list against the log (scripts/audit_log.py, the same code, runs without petition)."""
    from petition.transparency.auditor import main as audit_main

    argv = ["--url", url, *(["--state", state] if state else []), *(["--key", key] if key else [])]
    sys.exit(audit_main(argv))


@main.group()
def appeal() -> None:
    """Appeals and their texts."""


@appeal.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--moderation",
    type=click.Choice(["pre", "post"]),
    default="post",
    show_default=True,
    help="For a new appeal: list on confirmation (post) or after approval (pre).",
)
def appeal_import(files: tuple[Path, ...], moderation: str) -> None:
    """Create or update appeals from Markdown text files (a '---' header, then the text)."""
    from petition.appeals.about import AboutError
    from petition.appeals.queries import import_text, text_about
    from petition.appeals.states import Moderation
    from petition.appeals.textfile import TextFileError, read_text_file

    texts = []
    for path in files:
        try:
            text = read_text_file(path)
            text_about(text)  # initiators, starts, deadline: refused before anything is stored
            texts.append((path, text))
        except (TextFileError, AboutError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{path}: {exc}") from exc

    async def action(database: Database) -> list[str]:
        lines = []
        for path, text in texts:
            _appeal_id, version = await import_text(
                database,
                text=text,
                moderation=Moderation(moderation),
            )
            state = f"version {version}" if version else "unchanged"
            lines.append(f"{path}: {text.slug} [{text.language}] {state}")
        return lines

    for line in asyncio.run(_with_db(_settings(), action)):
        click.echo(line)


@main.group()
def organiser() -> None:
    """Organiser accounts (the /admin/ area)."""


def _read_password() -> str:
    """A hidden prompt with confirmation on a terminal; otherwise the first line of stdin.

    Never an argument or option: those end up in shell history and `ps`.
    """
    from petition.organisers.passwords import PasswordPolicyError, check_policy

    if sys.stdin.isatty():
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    return password


@organiser.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["admin", "moderator"]),
    required=True,
    help="admin: also manages organisers, appeals and the contact export.",
)
def organiser_add(email: str, role: str) -> None:
    """Add an organiser; the password comes from a prompt or from stdin."""
    from email_validator import EmailNotValidError, validate_email

    from petition.organisers.passwords import hash_password
    from petition.organisers.queries import OrganiserExists, create_organiser
    from petition.organisers.roles import Role

    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.ClickException(f"not a valid email address: {exc}") from exc
    password_hash = hash_password(_read_password())

    async def action(database: Database) -> int:
        return await create_organiser(
            database,
            email=address,
            password_hash=password_hash,
            role=Role(role),
        )

    try:
        organiser_id = asyncio.run(_with_db(_settings(), action))
    except OrganiserExists as exc:
        raise click.ClickException("an organiser with this email address exists already") from exc
    click.echo(f"organiser #{organiser_id} added ({role})")


@organiser.command("password")
@click.argument("email")
def organiser_password(email: str) -> None:
    """Set a new password for an organiser (ends their sessions); from a prompt or stdin."""
    from petition.organisers.passwords import hash_password
    from petition.organisers.queries import find_organiser, set_password

    password_hash = hash_password(_read_password())

    async def action(database: Database) -> int | None:
        row = await find_organiser(database, email=email)
        if row is None:
            return None
        await set_password(database, organiser_id=row["id"], password_hash=password_hash)
        return int(row["id"])

    organiser_id = asyncio.run(_with_db(_settings(), action))
    if organiser_id is None:
        raise click.ClickException("no organiser with this email address")
    click.echo(f"password of organiser #{organiser_id} changed; their sessions have ended")


@main.group()
def dossier() -> None:
    """Signed PDF dossiers per signatory country."""


@dossier.command("build")
@click.option("--appeal", "slug", required=True, help="The appeal's slug.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. DE.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the signed PDF.",
)
def dossier_build(slug: str, country: str, out: Path) -> None:
    """Build, sign and record one country's dossier (also kept in DATA_DIR/dossiers)."""
    from petition.appeals.queries import get_appeal
    from petition.countries import is_country
    from petition.dossiers.jobs import Built, build, new_worker_id, start_build

    code = country.strip().upper()
    if not is_country(code):
        raise click.ClickException(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
    settings = _settings()
    _logging(logging.WARNING, settings)

    async def action(database: Database) -> Built:
        appeal_row = await get_appeal(database, slug=slug)
        if appeal_row is None:
            raise click.ClickException(f"no appeal with the slug {slug!r}")
        worker_id = new_worker_id("cli")
        dossier_id = await start_build(
            database,
            appeal_id=appeal_row["id"],
            country=code,
            worker_id=worker_id,
        )
        from petition.dossiers.jobs import get_dossier

        row = await get_dossier(database, dossier_id=dossier_id)
        assert row is not None
        with click.progressbar(length=100, label=f"dossier {slug} {code}", file=sys.stderr) as bar:

            def advance(value: int) -> None:
                if value > bar.pos:
                    bar.update(value - bar.pos)

            return await build(
                database,
                settings,
                dossier=row,
                worker_id=worker_id,
                progress=advance,
            )

    built = asyncio.run(_with_db(settings, action))
    private_directory(out.parent)
    write_private_file(out, built.path.read_bytes())  # 0600, as the stored copy
    click.echo(f"{out}: {built.named_count} named, {built.anonymous_count} not named, {built.pages} pages")
    click.echo(f"PDF SHA-256:  {built.pdf_sha256}")
    click.echo(f"list SHA-256: {built.list_sha256}")


@main.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new directory for the backup (made 0700).",
)
def backup(out: Path) -> None:
    """Back up the database and DATA_DIR's files, with a manifest of their SHA-256 (safe while petition runs)."""
    from petition.backup import BackupError, create_backup

    try:
        done = create_backup(_settings(), out)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = done.manifest
    size = sum(f.size for f in manifest.files)
    what = f"{manifest.backend} at revision {manifest.alembic_revision}"
    click.echo(f"{done.directory}: {what}, {len(manifest.files)} file(s), {size} bytes")
    click.echo(f"manifest SHA-256: {done.manifest_sha256}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only verify the backup against its manifest; write nothing.")
@click.option("--force", is_flag=True, help="Replace what the database and DATA_DIR hold (stop petition first).")
@click.option("--manifest-sha256", help="Refuse the backup unless its manifest has this SHA-256 (as backup printed).")
def restore(directory: Path, check: bool, force: bool, manifest_sha256: str | None) -> None:
    """Restore a backup into the configured database and DATA_DIR (both empty, unless --force)."""
    from petition.backup import BackupError, restore_backup, verify_backup

    try:
        if check:
            manifest = verify_backup(directory, manifest_sha256=manifest_sha256)
        else:
            # A placeholder secret: the embedded default would generate one into DATA_DIR, where
            # the backup's belongs (restoring never signs anything).
            settings = _settings(secret_key=secrets.token_urlsafe(32))
            manifest = restore_backup(settings, directory, force=force, manifest_sha256=manifest_sha256)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    what = f"{manifest.backend} at revision {manifest.alembic_revision}, made {manifest.created_at}"
    click.echo(f"{directory}: intact ({what}, {len(manifest.files)} file(s))" if check else f"restored {what}")
    if not check:
        click.echo("next: `petition db upgrade`, then start petition")


@main.group()
def addressees() -> None:
    """Members of the European Parliament and of PACE who receive the dossiers (docs/delivery.md)."""


@addressees.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--body", required=True, type=click.Choice(["ep", "pace"]), help="Whose members the file lists.")
@click.option("--source", default=None, help="Where the list came from (default: the file's name).")
@click.option(
    "--date",
    "source_date",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The date of the list itself (default: today); organisers are warned after 180 days.",
)
def addressees_import(file: Path, body: str, source: str | None, source_date: dt.datetime | None) -> None:
    """Replace a body's member list with FILE.csv (all or nothing: malformed rows are listed by line)."""
    from petition.delivery import addressees as lists

    try:
        members = lists.parse_members(file.read_bytes())
    except lists.ImportError_ as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise SystemExit(1) from exc
    day = source_date.date() if source_date else dt.date.today()

    async def action(database: Database) -> int:
        return await lists.import_members(
            database, body=body, members=members, source=source or file.name, source_date=day
        )

    asyncio.run(_with_db(_settings(), action))
    click.echo(f"{body}: {len(members)} addressees imported from {file.name} (as of {day.isoformat()})")
    if dt.date.today() - day > lists.STALE_AFTER:
        click.echo(f"warning: this list is older than 180 days ({day.isoformat()}): look for a current one", err=True)


@main.group()
def delivery() -> None:
    """Sending each country's signed dossier to its parliamentarians."""


@delivery.command("send")
@click.option("--appeal", "slug", required=True, help="The appeal's slug.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. DE.")
@click.option("--subject", default=None, help="The subject (default: the letter template's).")
@click.option(
    "--letter",
    "letter_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A text file with the covering letter (default: the template in the dossier's language).",
)
@click.option("--yes", is_flag=True, help="Send without asking.")
def delivery_send(slug: str, country: str, subject: str | None, letter_file: Path | None, yes: bool) -> None:
    """Send the country's latest signed dossier to its addressees, one email each (what the
    organisers' area does after review)."""
    from petition.appeals.queries import get_appeal
    from petition.countries import is_country
    from petition.delivery import sending
    from petition.outbox.messages import Mailer

    code = country.strip().upper()
    if not is_country(code):
        raise click.ClickException(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
    settings = _settings()
    _logging(logging.WARNING, settings)
    given_letter = letter_file.read_text(encoding="utf-8").strip() if letter_file else None

    async def action(database: Database) -> tuple[int, int]:
        appeal_row = await get_appeal(database, slug=slug)
        if appeal_row is None:
            raise click.ClickException(f"no appeal with the slug {slug!r}")
        plan = await sending.plan(database, appeal=appeal_row, country=code)
        if plan.dossier is None:
            raise click.ClickException(f"{code} has no signed dossier yet: build one first")
        title = await sending.appeal_title(database, appeal=appeal_row, language=plan.language)
        default_subject, default_letter = sending.default_letter(
            language=plan.language,
            title=title,
            country=code,
            named=int(plan.dossier["signatory_count"]),
            anonymous=int(plan.dossier["anonymous_count"]),
        )
        letter = given_letter or default_letter
        if not yes and not click.confirm(f"Send {code}'s dossier to {len(plan.sendable)} recipients?"):
            raise click.Abort
        try:
            delivery_id = await sending.send(
                database,
                mailer=Mailer(settings),
                appeal=appeal_row,
                country=code,
                subject=subject or default_subject,
                letter=letter,
                organiser_id=None,
                interval=settings.delivery_interval,
            )
        except sending.NothingToSend as exc:
            raise click.ClickException(str(exc)) from exc
        return delivery_id, len(plan.sendable)

    delivery_id, count = asyncio.run(_with_db(settings, action))
    click.echo(f"delivery {delivery_id}: {count} recipients queued; the worker sends them")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
