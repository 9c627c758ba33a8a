"""The log's signing key: LOG_SIGNING_KEY, or one generated once into DATA_DIR.

Its name — the checkpoints' origin line and the name in their signature line — is BASE_URL's
host and path followed by `/log` (`petition.example/log`), as C2SP origins are written.
Only workers sign; the web processes serve the verifier key of the latest checkpoint,
stored beside it, so they need no key of their own.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit

from petition.settings import Settings, private_directory
from petition.transparency.note import Signer

KEY_FILE = "log-signing-key"


def log_origin(settings: Settings) -> str:
    parts = urlsplit(settings.base_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/log"


def log_signer(settings: Settings) -> Signer:
    if settings.log_signing_key is not None:
        return Signer.parse(str(settings.log_signing_key))
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        private_directory(settings.data_dir)
        # Written whole under a private name, then linked into place: two workers starting
        # together both end up with the first one's key.
        tmp = settings.data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Signer.generate(log_origin(settings)).skey() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Signer.parse(path.read_text().strip())
