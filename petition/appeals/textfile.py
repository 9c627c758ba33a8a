"""Appeal texts kept in files: a `---` block of `key: value` lines, then Markdown."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


class TextFileError(ValueError):
    pass


@dataclass(frozen=True)
class AppealTextFile:
    slug: str
    language: str
    title: str
    addressees: str
    body: str
    # Optional, for the appeal rather than this text (petition.appeals.about): "A | site; B",
    # and dates such as 2026-12-01. Empty: left as they are.
    initiators: str = ""
    starts: str = ""
    deadline: str = ""


def parse_text_file(text: str) -> AppealTextFile:
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != "---":
        raise TextFileError("the file must start with a '---' line")
    meta: dict[str, str] = {}
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            body = "\n".join(lines[index + 1 :]).strip() + "\n"
            break
        key, sep, value = line.partition(":")
        if not sep:
            raise TextFileError(f"line {index + 1}: expected 'key: value'")
        meta[key.strip().lower()] = value.strip()
    else:
        raise TextFileError("the header is not closed with a '---' line")
    missing = [k for k in ("slug", "language", "title") if not meta.get(k)]
    if missing:
        raise TextFileError("missing in the header: " + ", ".join(missing))
    return AppealTextFile(
        slug=meta["slug"],
        language=meta["language"],
        title=meta["title"],
        addressees=meta.get("addressees", ""),
        body=body,
        initiators=meta.get("initiators", ""),
        starts=meta.get("starts", ""),
        deadline=meta.get("deadline", ""),
    )


def read_text_file(path: Path) -> AppealTextFile:
    return parse_text_file(path.read_text(encoding="utf-8"))


def content_hash(title: str, addressees: str, body: str) -> str:
    """What an endorsement records of the text it was shown."""
    payload = "\x1f".join((title.strip(), addressees.strip(), body.strip())).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()
