"""Jinja2 set up once: autoescaping for HTML, gettext bound to the current language."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jinja2
import jinja2.bccache
from markupsafe import Markup
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from petition import countries, i18n
from petition.formatting import format_date, format_datetime, format_list, format_number
from petition.markdown import render_markdown
from petition.resources import package_path
from petition.settings import Operator


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates kept for the process: an app made again (each test makes one, a
    worker makes one for its emails) reads a template's code from here instead of parsing and
    compiling it anew. Jinja keys each entry by the template's name and the checksum of its
    source; every environment here is made by `make_environment`, with the same options."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _MemoryBytecodeCache()


def make_environment(operator: Operator | None = None) -> jinja2.Environment:
    """`operator` (Settings.operator): who the pages and emails speak as; none named when left out."""
    env = jinja2.Environment(
        bytecode_cache=_BYTECODE,
        loader=jinja2.FileSystemLoader(str(package_path("templates"))),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the code and change only with a new release (and a restart):
        # checking each file's mtime on every render cost a stat() per template per request.
        auto_reload=False,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s: i18n.translations(i18n.get_language()).gettext(s),
        lambda s, p, n: i18n.translations(i18n.get_language()).ngettext(s, p, n),
        newstyle=True,
    )
    env.globals.update(
        state_label=state_label,
        country_name=countries.name,
        languages=i18n.LANGUAGES,
        language_names=i18n.LANGUAGE_NAMES,
        current_language=i18n.get_language,
        operator=operator or Operator(),
        # The application puts the hashed names in its place (petition.assets).
        static_url=lambda path: "/static/" + path,
    )
    env.filters.update(
        date=format_date,
        datetime=format_datetime,
        number=format_number,
        markdown=lambda text: Markup(render_markdown(text)),  # noqa: S704 - sanitised HTML
        bdi=isolate,
        list=format_list,
    )
    return env


def isolate(value: object) -> Markup:
    """`value` (a name, a city: text someone typed) in <bdi>, escaped: a right-to-left name keeps
    its place in a left-to-right sentence and the sentence's punctuation stays where it was."""
    return Markup("<bdi>%s</bdi>") % (value,)


def state_label(code: str) -> object:
    """An endorsement or email state, translated for the organiser reading it."""
    from petition.endorsements.states import STATE_LABELS as ENDORSEMENT
    from petition.outbox.states import STATE_LABELS as OUTBOX

    return ENDORSEMENT.get(code) or OUTBOX.get(code) or code


def make_templates(operator: Operator | None = None) -> Jinja2Templates:
    templates = Jinja2Templates(env=make_environment(operator))
    templates.env.globals["url"] = page_url
    return templates


def page_url(request: Request, path: str, **params: Any) -> str:
    """A link to `path` that keeps an explicit `?lang=` choice."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    if request.scope.get("state", {}).get("lang_explicit"):
        query.setdefault("lang", i18n.get_language())
    return path + ("?" + urlencode(query) if query else "")


def switch_language_url(request: Request, code: str) -> str:
    """The same page in another language (a page rendered for a POST names its GET page)."""
    params = dict(request.query_params)
    params["lang"] = code
    path = request.scope.get("state", {}).get("language_switch_path") or request.url.path
    return path + "?" + urlencode(params)
