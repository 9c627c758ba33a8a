"""The log's signing key: LOG_SIGNING_KEY, or one generated once and kept in the database.

Every worker of a deployment must sign with the same key, whatever its host: a key per
DATA_DIR made workers on two hosts re-sign each other's checkpoints in turn, and /log/key
changed every few seconds. So the generated key lives in the database (`log_keys`), which every
worker shares and every backup holds; the first worker to need it makes it, the others read
it. LOG_SIGNING_KEY, when set, is used instead (an operator who keeps the key elsewhere).

Its name — the checkpoints' origin line and the name in their signature line — is BASE_URL's
host and path followed by `/log` (`petition.example/log`), as C2SP origins are written.
Web processes serve the verifier key of the latest checkpoint, stored beside it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa

from petition.db import INTEGRITY_ERRORS, Database
from petition.schema import utcnow
from petition.settings import Settings
from petition.transparency.note import Signer
from petition.transparency.tables import log_keys

#: The one generated key's row.
_GENERATED = "generated"


def log_origin(settings: Settings) -> str:
    parts = urlsplit(settings.base_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/log"


async def log_signer(db: Database, settings: Settings) -> Signer:
    if settings.log_signing_key is not None:
        return Signer.parse(str(settings.log_signing_key))
    stored = await db.fetch_val(sa.select(log_keys.c.skey).where(log_keys.c.name == _GENERATED))
    if stored is None:
        try:
            async with db.write():
                await db.execute(
                    log_keys.insert().values(
                        name=_GENERATED, skey=Signer.generate(log_origin(settings)).skey(), created_at=utcnow()
                    )
                )
        except INTEGRITY_ERRORS:
            pass  # another worker was first: use its key
        stored = await db.fetch_val(sa.select(log_keys.c.skey).where(log_keys.c.name == _GENERATED))
    return Signer.parse(str(stored))
