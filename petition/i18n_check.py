"""`python -m petition.i18n_check MESSAGES.pot`: every catalogue complete and well-formed.

Complete means every msgid of the template has a non-empty, non-fuzzy translation
in every language of LANGUAGES but English, with the same %(name)s placeholders.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from petition.i18n import LANGUAGES, LOCALE_DIR

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _ids(message_id: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if message_id is None:
        return ()
    return tuple(message_id) if isinstance(message_id, tuple | list) else (message_id,)


def problems(template_path: Path) -> list[str]:
    with template_path.open("rb") as fh:
        template = read_po(fh)
    found: list[str] = []
    for language in LANGUAGES:
        if language == "en":
            continue
        po_path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
        if not po_path.exists():
            found.append(f"{language}: no catalogue at {po_path}")
            continue
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        for message in template:
            if not message.id:
                continue
            translated = catalog.get(message.id)
            key = _ids(message.id)[0][:60]
            if translated is None:
                found.append(f"{language}: missing {key!r}")
                continue
            strings = [s for s in _ids(translated.string) if s] if translated.string else []
            if not strings or translated.fuzzy or len(strings) < len(_ids(translated.string)):
                found.append(f"{language}: untranslated {key!r}")
                continue
            wanted = set(PLACEHOLDER.findall(" ".join(_ids(message.id))))
            for text in strings:
                got = set(PLACEHOLDER.findall(text))
                if got - wanted or (wanted - {"num"}) - got:
                    found.append(f"{language}: placeholders differ in {key!r}")
                    break
    return found


def main() -> int:
    found = problems(Path(sys.argv[1]))
    for line in found:
        print(line)
    print(f"{len(found)} catalogue problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
