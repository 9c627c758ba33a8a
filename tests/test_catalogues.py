"""Every user-facing string is translated in every language the site offers (the catalogues are complete)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from petition.i18n import translations
from petition.i18n_check import problems
from tests.support import PROJECT_ROOT


def test_every_catalogue_translates_every_string_with_the_same_placeholders(tmp_path: Path):
    template = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "lazy_gettext",
            "-k",
            "_l",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "-o",
            str(template),
            ".",
        ],
        cwd=PROJECT_ROOT,
        check=True,
    )
    assert template.stat().st_size > 10_000
    assert problems(template) == []


def test_translations_are_really_loaded():
    assert translations("de").gettext("Confirm") != "Confirm"
    assert translations("ru").gettext("Confirm") != "Confirm"
    assert translations("uk").gettext("Confirm") != translations("ru").gettext("Confirm")
    assert translations("fr").gettext("Confirm") != "Confirm"
    # The network's languages (issue 20): each its own, none falling back to English.
    for language in ("be", "pl", "es", "it"):
        assert translations(language).gettext("Confirm") != "Confirm", language
    assert translations("be").gettext("Confirm") not in (
        translations("ru").gettext("Confirm"),
        translations("uk").gettext("Confirm"),
    )
