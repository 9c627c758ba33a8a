"""Settings from the environment and a `.env` file (contract names in DESIGN.md)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.config import Config
from starlette.datastructures import Secret


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


SMTP_TLS_MODES = ("none", "starttls", "tls")
#: SIGNING_P12's value for "the certificate generated into DATA_DIR" (what unset means on SQLite).
SELF_SIGNED = "self-signed"
LOG_FORMATS = ("text", "json")
EMAIL_RE = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:.]+$")


@dataclass(frozen=True)
class Operator:
    """Who runs the site (SITE_NAME, OPERATOR_*, PRIVACY_CONTACT): the header, the footer, every
    email's sender and signature, the privacy page and the dossier speak as it. Unset values stay
    None and the pages say so neutrally; nothing stands in for a missing operator."""

    site_name: str | None = None
    name: str | None = None
    email: str | None = None
    address: str | None = None
    privacy_contact: str | None = None

    @property
    def privacy_contact_is_email(self) -> bool:
        return bool(self.privacy_contact) and "://" not in str(self.privacy_contact)

    @property
    def named(self) -> bool:
        return bool(self.name)


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: Secret
    base_url: str
    data_dir: Path
    # PostgreSQL: connections one process may hold (None: the URL's max_size, else 10), and
    # seconds `serve`/`worker` wait at start for the server to answer (0: fail at once).
    database_pool_size: int | None = None
    database_wait_seconds: float = 60.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: Secret | None = None
    smtp_tls: str = "none"
    smtp_timeout: float = 30.0
    mail_from: str = "petition@localhost"
    signing_p12: Path | None = None
    signing_p12_password: Secret | None = None
    timestamp_url: str | None = None  # RFC 3161 server: dossiers become PAdES B-T
    # PAdES B-LT: the certificates and revocation data (CRLs/OCSP from the CAs' own addresses)
    # embedded at signing, checked against these roots (PEM; unset: the system's bundle).
    signing_ltv: bool = False
    signing_trust_roots: Path | None = None
    # The public log's Ed25519 signer key (PRIVATE+KEY+<name>+<hash>+<key>); unset: generated once
    # and kept in the database, for every worker (petition.transparency.keys).
    log_signing_key: Secret | None = None
    dossier_lease_seconds: float = 1800.0
    trusted_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Reverse proxies whose X-Forwarded-For names the visitor (petition.server); unset: none.
    proxy_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Seconds a client has to send a request's headers, and then each part of its body.
    request_read_timeout: float = 10.0
    confirm_max_age: int = 7 * 24 * 3600
    unconfirmed_retention_days: int = 30
    run_worker: bool = True
    worker_poll_interval: float = 2.0
    outbox_max_attempts: int = 12
    outbox_max_backoff: float = 3600.0
    outbox_lease_seconds: float = 300.0
    create_demo: bool = True
    # Anti-abuse (petition.abuse): counts per window; over a limit an endorsement is held.
    rate_limit_ip_burst: int = 10  # per IP per minute (form and resend)
    rate_limit_ip_sustained: int = 60  # per IP per hour
    rate_limit_email: int = 5  # submissions per email address per hour
    rate_limit_domain: int = 50  # submissions per email domain per hour
    rate_limit_resend: int = 3  # confirmation emails re-sent per endorsement per day
    rate_limit_data_request: int = 3  # data-request emails per address per day
    rate_limit_export: int = 6  # large open-data downloads (the CSV) per client address per minute
    intake_paused: bool = False  # stops every appeal's intake with a 503 page
    purge_interval: float = 3600.0  # seconds between the worker's purge runs
    # A country's anonymous count below this is not attributed to it in public (petition.publish.queries).
    anonymous_count_threshold: int = 3
    # /verify: files checked per client address per hour, and the seconds (of waiting and of
    # CPU time) one check may take before the file is called too complex (petition.dossiers.verify_pool).
    rate_limit_verify: int = 10
    verify_timeout: float = 20.0
    # Operations (docs/operations.md): /metrics for TRUSTED_IPS or this bearer token; log lines as text
    # or JSON; /readyz says "degraded" past these bounds (seconds).
    metrics_token: Secret | None = None
    log_format: str = "text"
    ready_outbox_max_age: float = 900.0
    ready_worker_max_silence: float = 300.0
    operator: Operator = field(default_factory=Operator)
    # Domain proofs (petition.identity): the resolvers asked (unset: the system's), how long a
    # challenge (and its link) stays valid, and how often a proved domain is checked again.
    dns_nameservers: tuple[tuple[str, int], ...] = ()
    domain_proof_max_age: int = 14 * 24 * 3600
    domain_proof_recheck_interval: float = 24 * 3600.0
    # Tests only: lets the file check connect to loopback addresses (and trust a test certificate).
    domain_proof_allow_loopback: bool = False
    # Origins (scheme://host[:port]) whose pages may frame /appeals/{slug}/embed (petition.reach).
    embed_origins: tuple[str, ...] = ()
    # gzip for text responses; off where the reverse proxy compresses (docs/reach.md).
    gzip: bool = True
    # Seconds between two emails of one delivery to parliamentarians (petition.delivery).
    delivery_interval: float = 2.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    def url_for_path(self, path: str) -> str:
        """An absolute URL under BASE_URL; links in emails come from here, never from Host."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def _parse_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise SettingsError(f"TRUSTED_IPS: {part!r} is not an address or network") from exc
    return tuple(networks)


def _parse_nameservers(raw: str) -> tuple[tuple[str, int], ...]:
    """`DNS_NAMESERVERS`: IP addresses, comma-separated, each with an optional port
    (`192.0.2.53`, `192.0.2.53:5353`, `[2001:db8::53]:5353`, `2001:db8::53`)."""
    servers = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        host, port = part, 53
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            if rest:
                if not rest.startswith(":") or not rest[1:].isdigit():
                    raise SettingsError(f"DNS_NAMESERVERS: {part!r} is not an address with an optional port")
                port = int(rest[1:])
        elif part.count(":") == 1:
            host, _, port_text = part.partition(":")
            if not port_text.isdigit():
                raise SettingsError(f"DNS_NAMESERVERS: {part!r} is not an address with an optional port")
            port = int(port_text)
        try:
            address = ipaddress.ip_address(host)
        except ValueError as exc:
            raise SettingsError(f"DNS_NAMESERVERS: {part!r} is not an IP address (with an optional port)") from exc
        if not 0 < port < 65536:
            raise SettingsError(f"DNS_NAMESERVERS: {part!r} has no valid port")
        servers.append((str(address), port))
    return tuple(servers)


def _secret_from_data_dir(data_dir: Path) -> str:
    """Generate SECRET_KEY once for the embedded default and keep it in the data directory."""
    path = data_dir / "secret_key"
    if not path.exists():
        private_directory(data_dir)
        # Written whole under a private name, then linked into place: `serve` and a
        # `worker` starting together must not crash on, or read, a half-written file.
        tmp = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process was first: use its secret
        finally:
            tmp.unlink()
    value = path.read_text().strip()
    if not value:
        raise SettingsError(f"{path} is empty: delete it to have a new SECRET_KEY generated")
    return value


def _parse_origins(raw: str) -> tuple[str, ...]:
    """EMBED_ORIGINS: `https://partner.example, http://localhost:8080` → each origin as a CSP
    source (scheme, host, optional port; no path, no wildcard but a leading `*.` label)."""
    origins = []
    for item in raw.replace(",", " ").split():
        origin = item.strip().rstrip("/")
        if not re.fullmatch(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?", origin):
            raise SettingsError(
                f"EMBED_ORIGINS: {item!r} is not an origin (scheme://host[:port], e.g. https://partner.example)"
            )
        if origin.lower() not in origins:
            origins.append(origin.lower())
    return tuple(origins)


def _timestamp_url(raw: object) -> str | None:
    value = str(raw or "").strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise SettingsError("TIMESTAMP_URL must be an http:// or https:// URL of an RFC 3161 timestamp server")
    return value


def _email_setting(name: str, raw: object) -> str | None:
    value = str(raw or "").strip()
    if not value:
        return None
    if not EMAIL_RE.match(value):
        raise SettingsError(f"{name} must be one email address such as office@example.org, not {value!r}")
    return value


def _text_setting(raw: object, limit: int = 300) -> str | None:
    # One line in the environment; "\n" (backslash n) starts a new line, e.g. in OPERATOR_ADDRESS.
    value = str(raw or "").replace("\\n", "\n").strip()
    lines = [" ".join(line.split()) for line in value.split("\n")]
    value = "\n".join(line for line in lines if line)
    return value[:limit] or None


def _operator(get: Callable[[str, object], object]) -> Operator:
    contact = str(get("PRIVACY_CONTACT", "") or "").strip()
    if contact and "://" in contact:
        if not contact.startswith(("https://", "http://")) or any(c.isspace() for c in contact):
            raise SettingsError("PRIVACY_CONTACT must be an email address or an http(s):// URL")
    else:
        contact = _email_setting("PRIVACY_CONTACT", contact) or ""
    return Operator(
        site_name=_text_setting(get("SITE_NAME", ""), 80),
        name=_text_setting(get("OPERATOR_NAME", ""), 200),
        email=_email_setting("OPERATOR_EMAIL", get("OPERATOR_EMAIL", "")),
        address=_text_setting(get("OPERATOR_ADDRESS", ""), 500),
        privacy_contact=contact or None,
    )


def load_settings(env_file: str | os.PathLike[str] | None = ".env", **overrides: object) -> Settings:
    """Read the settings; `overrides` (used by tests and the CLI) win over the environment."""
    config = Config(Path(env_file) if env_file and Path(env_file).exists() else None)

    def get(name: str, default: object = None) -> object:
        key = name.lower()
        if key in overrides:
            return overrides[key]
        return config(name, default=default)

    data_dir = Path(str(get("DATA_DIR", "data"))).expanduser().resolve()
    database_url = str(get("DATABASE_URL", "") or f"sqlite:///{data_dir / 'petition.db'}")
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    if not database_url.startswith(("sqlite:///", "postgresql://")):
        raise SettingsError("DATABASE_URL must start with sqlite:/// or postgresql://")

    raw_secret = get("SECRET_KEY", None)
    if not raw_secret:
        if not database_url.startswith("sqlite"):
            raise SettingsError(
                "SECRET_KEY is not set. In production (a PostgreSQL DATABASE_URL) set it to a "
                "long random value shared by every web and worker process, e.g. "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
            )
        raw_secret = _secret_from_data_dir(data_dir)
    secret = str(raw_secret)
    if len(secret) < 16:
        raise SettingsError("SECRET_KEY must be at least 16 characters long")

    smtp_tls = str(get("SMTP_TLS", "none") or "none").strip().lower()
    if smtp_tls not in SMTP_TLS_MODES:
        modes = ", ".join(SMTP_TLS_MODES)
        raise SettingsError(f"SMTP_TLS must be one of {modes}, not {smtp_tls!r}")
    smtp_port_default = {"none": 25, "starttls": 587, "tls": 465}[smtp_tls]

    def as_int(name: str, default: int) -> int:
        value = get(name, default)
        try:
            return int(str(value))
        except ValueError as exc:
            raise SettingsError(f"{name} must be a whole number") from exc

    def as_float(name: str, default: float) -> float:
        value = get(name, default)
        try:
            return float(str(value))
        except ValueError as exc:
            raise SettingsError(f"{name} must be a number") from exc

    def as_bool(name: str, default: bool) -> bool:
        value = get(name, default)
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")

    anonymous_count_threshold = as_int("ANONYMOUS_COUNT_THRESHOLD", 3)
    if anonymous_count_threshold < 1:
        raise SettingsError("ANONYMOUS_COUNT_THRESHOLD must be at least 1")

    pool_size = get("DATABASE_POOL_SIZE", None)
    database_pool_size = as_int("DATABASE_POOL_SIZE", 0) if pool_size not in (None, "") else None
    if database_pool_size is not None and database_pool_size < 1:
        raise SettingsError("DATABASE_POOL_SIZE must be at least 1")
    database_wait_seconds = as_float("DATABASE_WAIT_SECONDS", 60.0)
    if database_wait_seconds < 0:
        raise SettingsError("DATABASE_WAIT_SECONDS must be 0 or more")
    log_format = str(get("LOG_FORMAT", "text") or "text").strip().lower()
    if log_format not in LOG_FORMATS:
        raise SettingsError(f"LOG_FORMAT must be text or json, not {log_format!r}")
    metrics_token = str(get("METRICS_TOKEN", "") or "")
    if metrics_token and len(metrics_token) < 16:
        raise SettingsError("METRICS_TOKEN must be at least 16 characters long")

    smtp_password = get("SMTP_PASSWORD", None)
    p12 = str(get("SIGNING_P12", "") or "").strip()
    if not p12 and not database_url.startswith("sqlite"):
        # Each host would make a certificate of its own in its DATA_DIR: a dossier signed on
        # one would be "another certificate" to /verify on the next, and lost with its disk.
        raise SettingsError(
            "SIGNING_P12 is not set. In production (a PostgreSQL DATABASE_URL) set it to the PKCS#12 "
            "file (with SIGNING_P12_PASSWORD) that signs dossiers on every host, or to `self-signed` "
            "to keep the certificate generated into DATA_DIR/signing, which every host must then "
            "share and every backup hold (docs/operations.md)."
        )
    if p12 == SELF_SIGNED:
        p12 = ""
    p12_password = get("SIGNING_P12_PASSWORD", None)
    smtp_host = get("SMTP_HOST", None)
    log_signing_key = str(get("LOG_SIGNING_KEY", "") or "").strip()
    timestamp_url = _timestamp_url(get("TIMESTAMP_URL", None))
    signing_ltv = as_bool("SIGNING_LTV", False)
    if signing_ltv and timestamp_url is None:
        raise SettingsError("SIGNING_LTV needs TIMESTAMP_URL: PAdES B-LT is B-T with the validation data added")
    raw_roots = str(get("SIGNING_TRUST_ROOTS", "") or "").strip()
    trust_roots = Path(raw_roots) if raw_roots else None
    if trust_roots is not None and not trust_roots.is_file():
        raise SettingsError(f"SIGNING_TRUST_ROOTS: no such file {trust_roots}")
    if log_signing_key and not log_signing_key.startswith("PRIVATE+KEY+"):
        raise SettingsError("LOG_SIGNING_KEY must be a signer key: PRIVATE+KEY+<name>+<hash>+<key>")
    return Settings(
        database_url=database_url,
        secret_key=Secret(secret),
        base_url=str(get("BASE_URL", "http://127.0.0.1:8000")).rstrip("/"),
        data_dir=data_dir,
        database_pool_size=database_pool_size,
        database_wait_seconds=database_wait_seconds,
        smtp_host=str(smtp_host) if smtp_host else None,
        smtp_port=as_int("SMTP_PORT", smtp_port_default),
        smtp_username=str(get("SMTP_USERNAME", "") or "") or None,
        smtp_password=Secret(str(smtp_password)) if smtp_password else None,
        smtp_tls=smtp_tls,
        smtp_timeout=as_float("SMTP_TIMEOUT", 30.0),
        mail_from=str(get("MAIL_FROM", "petition@localhost")),
        signing_p12=Path(str(p12)) if p12 else None,
        signing_p12_password=Secret(str(p12_password)) if p12_password else None,
        timestamp_url=timestamp_url,
        signing_ltv=signing_ltv,
        signing_trust_roots=trust_roots,
        log_signing_key=Secret(log_signing_key) if log_signing_key else None,
        dossier_lease_seconds=as_float("DOSSIER_LEASE_SECONDS", 1800.0),
        trusted_ips=_parse_networks(str(get("TRUSTED_IPS", "") or "")),
        proxy_ips=_parse_networks(str(get("PROXY_IPS", "") or "")),
        request_read_timeout=as_float("REQUEST_READ_TIMEOUT", 10.0),
        confirm_max_age=as_int("CONFIRM_MAX_AGE", 7 * 24 * 3600),
        unconfirmed_retention_days=as_int("UNCONFIRMED_RETENTION_DAYS", 30),
        run_worker=as_bool("RUN_WORKER", True),
        worker_poll_interval=as_float("WORKER_POLL_INTERVAL", 2.0),
        outbox_max_attempts=as_int("OUTBOX_MAX_ATTEMPTS", 12),
        outbox_max_backoff=as_float("OUTBOX_MAX_BACKOFF", 3600.0),
        outbox_lease_seconds=as_float("OUTBOX_LEASE_SECONDS", 300.0),
        create_demo=as_bool("CREATE_DEMO", True),
        rate_limit_ip_burst=as_int("RATE_LIMIT_IP_BURST", 10),
        rate_limit_ip_sustained=as_int("RATE_LIMIT_IP_SUSTAINED", 60),
        rate_limit_email=as_int("RATE_LIMIT_EMAIL", 5),
        rate_limit_domain=as_int("RATE_LIMIT_DOMAIN", 50),
        rate_limit_resend=as_int("RATE_LIMIT_RESEND", 3),
        rate_limit_data_request=as_int("RATE_LIMIT_DATA_REQUEST", 3),
        rate_limit_export=as_int("RATE_LIMIT_EXPORT", 6),
        intake_paused=as_bool("INTAKE_PAUSED", False),
        purge_interval=as_float("PURGE_INTERVAL", 3600.0),
        anonymous_count_threshold=anonymous_count_threshold,
        rate_limit_verify=as_int("RATE_LIMIT_VERIFY", 10),
        verify_timeout=as_float("VERIFY_TIMEOUT", 20.0),
        metrics_token=Secret(metrics_token) if metrics_token else None,
        log_format=log_format,
        ready_outbox_max_age=as_float("READY_OUTBOX_MAX_AGE", 900.0),
        ready_worker_max_silence=as_float("READY_WORKER_MAX_SILENCE", 300.0),
        operator=_operator(get),
        dns_nameservers=_parse_nameservers(str(get("DNS_NAMESERVERS", "") or "")),
        domain_proof_max_age=as_int("DOMAIN_PROOF_MAX_AGE", 14 * 24 * 3600),
        domain_proof_recheck_interval=as_float("DOMAIN_PROOF_RECHECK_INTERVAL", 24 * 3600.0),
        domain_proof_allow_loopback=as_bool("DOMAIN_PROOF_ALLOW_LOOPBACK", False),
        embed_origins=_parse_origins(str(get("EMBED_ORIGINS", "") or "")),
        gzip=as_bool("GZIP", True),
        delivery_interval=as_float("DELIVERY_INTERVAL", 2.0),
    )


# --- files under DATA_DIR: the service's user only ---------------------------------------------
# The database, emails (.eml), dossiers, the secret key and the signing key name people or let
# someone act as the service. Each is created with its mode, so no other user of the machine can
# open it even for a moment, whatever the process umask.

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    """Create `path` and any missing parent as 0700; a directory that exists keeps its mode."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # another process was first
            if not directory.is_dir():
                raise
    return path


def create_private_file(path: Path) -> bool:
    """Create `path` empty as 0600 if it does not exist yet; True when this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private_file(path: Path, data: bytes) -> None:
    """Write `path` whole as 0600: under a private temporary name created with that mode, then
    renamed into place, so a reader never sees half a file (and nobody else any of it)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
