"""Emails are rendered from `templates/email/<name>/` and queued in the caller's transaction."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import format_datetime

import jinja2

from petition import i18n
from petition.db import Database, Row
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.schema import utcnow
from petition.settings import Settings


def render_email(env: jinja2.Environment, name: str, language: str, context: dict[str, object]) -> tuple[str, str, str]:
    with i18n.language(language):
        context = {**context, "language": language}
        subject = env.get_template(f"email/{name}/subject.txt").render(context)
        text = env.get_template(f"email/{name}/body.txt").render(context)
        html = env.get_template(f"email/{name}/body.html").render(context)
    return " ".join(subject.split()), text, html


def new_message_id(settings: Settings) -> str:
    domain = settings.mail_from.rpartition("@")[2].strip("> ") or "petition.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


async def enqueue_email(
    db: Database,
    *,
    env: jinja2.Environment,
    settings: Settings,
    name: str,
    to: str,
    language: str,
    context: dict[str, object],
    endorsement_id: int | None = None,
) -> int:
    """Queue one email. Call inside the `db.write()` that makes the change causing it."""
    subject, text, html = render_email(env, name, language, context)
    now = utcnow()
    return int(
        await db.execute(
            outbox.insert().values(
                kind=name,
                endorsement_id=endorsement_id,
                to_addr=to,
                subject=subject,
                body_text=text,
                body_html=html,
                language=language,
                message_id=new_message_id(settings),
                state=OutboxState.QUEUED.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    )


def build_message(row: Row, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row["to_addr"]
    message["Subject"] = row["subject"]
    message["Message-ID"] = row["message_id"]
    message["Date"] = format_datetime(row["created_at"])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row["body_text"])
    message.add_alternative(row["body_html"], subtype="html")
    # After add_alternative, which moves every Content-* header down into the text part.
    message["Content-Language"] = row["language"]
    return message


class Mailer:
    """What request handlers hold to queue emails; wakes the in-process worker."""

    def __init__(self, env: jinja2.Environment, settings: Settings) -> None:
        self.env = env
        self.settings = settings
        self._listeners: list[object] = []

    def on_queued(self, callback: object) -> None:
        self._listeners.append(callback)

    async def queue(self, db: Database, *, name: str, to: str, language: str,
                    context: dict[str, object], endorsement_id: int | None = None) -> int:
        outbox_id = await enqueue_email(db, env=self.env, settings=self.settings, name=name, to=to,
                                        language=language, context=context,
                                        endorsement_id=endorsement_id)
        return outbox_id

    def notify(self) -> None:
        """Call after the transaction that queued emails has committed."""
        for callback in self._listeners:
            callback()  # type: ignore[operator]
