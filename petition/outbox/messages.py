"""Emails are queued in the caller's transaction and rendered from `templates/email/<name>/`
by the worker that sends them."""

from __future__ import annotations

import functools
import json
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import idna
import jinja2

from petition import i18n
from petition.db import Database, Row
from petition.outbox.kinds import check_kind
from petition.outbox.tables import QUEUED_DEFAULTS, outbox
from petition.randomness import random_hex
from petition.schema import utcnow
from petition.settings import Settings
from petition.tokens import Purpose, Tokens


def signed_link(purpose: Purpose, path: str, *, nonce: str) -> dict[str, str]:
    """A link the worker signs when it renders the email: `path` with `{token}` in it.

    The outbox then never holds a usable signed link, and a link's validity counts from
    when the email is sent (a relay outage does not eat into it).
    """
    return {"sign": purpose.value, "path": path, "nonce": nonce}


def resolve_links(
    context: dict[str, Any], *, settings: Settings, tokens: Tokens, endorsement_id: int | None
) -> dict[str, Any]:
    """The context with each `signed_link` turned into its URL under BASE_URL."""
    resolved = dict(context)
    for name, value in context.items():
        if isinstance(value, dict) and "sign" in value:
            if endorsement_id is None:
                raise ValueError("a signed link needs the email's endorsement")
            token = tokens.make(Purpose(value["sign"]), endorsement_id=endorsement_id, nonce=value["nonce"])
            resolved[name] = settings.url_for_path(value["path"].replace("{token}", token))
    return resolved


def render_subject(env: jinja2.Environment, name: str, language: str, context: dict[str, object]) -> str:
    """One line, whatever the template's line breaks."""
    with i18n.language(language):
        subject = env.get_template(f"email/{name}/subject.txt").render({**context, "language": language})
    return " ".join(subject.split())


def render_email(env: jinja2.Environment, name: str, language: str, context: dict[str, object]) -> tuple[str, str, str]:
    subject = render_subject(env, name, language, context)
    with i18n.language(language):
        context = {**context, "language": language}
        text = env.get_template(f"email/{name}/body.txt").render(context)
        html = env.get_template(f"email/{name}/body.html").render(context)
    return subject, text, html


def queued_subject(env: jinja2.Environment, row: Row) -> str:
    """An outbox row's subject: as sent, or as it will be (the worker renders it when sending)."""
    if row["subject"] or row["context"] is None:
        return str(row["subject"])
    try:
        # Links stay unsigned: a subject has none.
        return render_subject(env, row["kind"], row["language"], json.loads(row["context"]))
    except Exception:  # noqa: BLE001 - a row the worker cannot build either: it has no subject
        return ""


def new_message_id(settings: Settings) -> str:
    """A new Message-ID: 128 random bits (as a uuid4's 122) at MAIL_FROM's domain."""
    return f"<{random_hex(16)}@{_message_id_domain(settings.mail_from)}>"


@functools.lru_cache(maxsize=8)
def _message_id_domain(mail_from: str) -> str:
    return mail_from.rpartition("@")[2].strip("> ") or "petition.invalid"


def outbox_values(
    settings: Settings,
    *,
    name: str,
    to: str,
    language: str,
    context: dict[str, object],
    endorsement_id: int | None = None,
) -> dict[str, object]:
    """The outbox row of one email: what it says (the values its kind's builder made, see
    petition.outbox.kinds), to be rendered by the worker that sends it."""
    check_kind(name)
    now = utcnow()
    return {
        "kind": name,
        "endorsement_id": endorsement_id,
        "to_addr": to,
        "context": json.dumps(context, ensure_ascii=False, separators=(",", ":")),
        "language": language,
        "message_id": new_message_id(settings),
        "next_attempt_at": now,
        "created_at": now,
        **QUEUED_DEFAULTS,
    }


async def enqueue_email(
    db: Database,
    *,
    settings: Settings,
    name: str,
    to: str,
    language: str,
    context: dict[str, object],
    endorsement_id: int | None = None,
) -> int:
    """Queue one email. Call inside the `db.write()` that makes the change causing it."""
    values = outbox_values(
        settings, name=name, to=to, language=language, context=context, endorsement_id=endorsement_id
    )
    return int(await db.execute(outbox.insert().values(**values)))


def ascii_domain(domain: str) -> str:
    """A domain as the relay and an ASCII header take it: "straße.de" → "xn--strae-oqa.de".

    IDNA 2008 / UTS 46 (the standard library's codec is IDNA 2003 and would make it
    "strasse.de", someone else's domain). An ASCII domain is left exactly as it is.
    Raises UnicodeError for a domain that has no A-label form.
    """
    if domain.isascii():
        return domain
    return idna.encode(domain, uts46=True, transitional=False).decode("ascii")


def header_addresses(value: str) -> str | tuple[Address, ...]:
    """What an address header (From, To) carries for `value`, one address or several.

    An address with an ASCII local part gets its domain as A-labels: plain RFC 5322 that
    every relay and mail program takes (the email package would otherwise write an RFC 2047
    encoded word into the domain, which nobody can deliver or reply to). One with a
    non-ASCII local part can only travel with SMTPUTF8 (RFC 6531, 6532): it stays in
    Unicode, and the transport sends it that way or fails at once. A value that does not
    parse, or a domain with no A-label form, is kept as it is for the transport to refuse.
    """
    if value.isascii():
        return value
    try:
        parsed = EmailMessage()
        parsed["To"] = value
        addresses = parsed["To"].addresses
        if not addresses or not all(a.username and a.domain for a in addresses):
            return value
        return tuple(
            Address(
                display_name=a.display_name,
                username=a.username,
                domain=ascii_domain(a.domain) if a.username.isascii() else a.domain,
            )
            for a in addresses
        )
    except (ValueError, IndexError, MessageError):  # UnicodeError is a ValueError; IndexError: email's parser
        return value


def sender(settings: Settings) -> str:
    """MAIL_FROM's address with the operator's name (OPERATOR_NAME, else SITE_NAME) shown as the
    sender; MAIL_FROM's own display name when neither is set."""
    name, address = parseaddr(settings.mail_from)
    display = settings.operator.name or settings.operator.site_name or name
    if not address or "@" not in address or not display:
        return settings.mail_from
    try:
        return str(Address(display_name=" ".join(display.split()), addr_spec=address))
    except (ValueError, IndexError, MessageError):
        return settings.mail_from


#: A context value that, resolved to a URL, makes the email carry the List-Unsubscribe headers.
LIST_UNSUBSCRIBE = "list_unsubscribe"


def build_message(row: Row, settings: Settings, env: jinja2.Environment, tokens: Tokens) -> EmailMessage:
    """The email of an outbox row, rendered from its templates in the row's language."""
    context: dict[str, Any] = {}
    if row["context"] is not None:
        context = resolve_links(
            json.loads(row["context"]), settings=settings, tokens=tokens, endorsement_id=row["endorsement_id"]
        )
        subject, text, html = render_email(env, row["kind"], row["language"], context)
    else:  # queued before emails were rendered by the worker
        subject, text, html = row["subject"], row["body_text"], row["body_html"]
    message = EmailMessage()
    message["From"] = header_addresses(sender(settings))
    if settings.operator.email:
        # "Reply to this email" reaches the operator, not the sending-only MAIL_FROM.
        message["Reply-To"] = header_addresses(settings.operator.email)
    message["To"] = header_addresses(row["to_addr"])
    message["Subject"] = subject
    message["Message-ID"] = row["message_id"]
    message["Date"] = format_datetime(row["created_at"])
    message["Auto-Submitted"] = "auto-generated"
    unsubscribe = context.get(LIST_UNSUBSCRIBE)
    if isinstance(unsubscribe, str):
        # RFC 2369 and RFC 8058: mail programs offer "unsubscribe", which POSTs
        # "List-Unsubscribe=One-Click" to the link (petition.news.views).
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    # After add_alternative, which moves every Content-* header down into the text part.
    message["Content-Language"] = row["language"]
    return message


class Mailer:
    """What request handlers hold to queue emails; wakes the in-process worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._listeners: list[object] = []

    def on_queued(self, callback: object) -> None:
        self._listeners.append(callback)

    async def queue(
        self,
        db: Database,
        *,
        name: str,
        to: str,
        language: str,
        context: dict[str, object],
        endorsement_id: int | None = None,
    ) -> int:
        outbox_id = await enqueue_email(
            db,
            settings=self.settings,
            name=name,
            to=to,
            language=language,
            context=context,
            endorsement_id=endorsement_id,
        )
        return outbox_id

    def notify(self) -> None:
        """Call after the transaction that queued emails has committed."""
        for callback in self._listeners:
            callback()  # type: ignore[operator]
