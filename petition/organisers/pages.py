"""Rendering and redirecting in the organiser area, in the language the organiser chose.

The language of a request comes from `?lang=`, a `/xx/` prefix or Accept-Language
(petition.i18n_middleware). An explicit choice lives only in the URL, so every form's action,
every link and every redirect of the organiser area carries it on: `keep_language` adds it to
a URL, `redirect` to a redirect's target, and `render` gives the templates `lang_field` (the
hidden field a GET form needs, as a browser drops the action's own query) and the labels that
turn stored codes into words (petition.organisers.labels, petition.audit.labels).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from markupsafe import Markup, escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from petition import i18n
from petition.appeals.queries import get_appeal_by_id
from petition.audit.labels import action_label
from petition.db import Row
from petition.organisers import labels
from petition.web import render as render_page
from petition.web import services


def explicit_language(request: Request) -> str | None:
    """The language the organiser chose in the URL, or None (Accept-Language decides)."""
    if request.scope.get("state", {}).get("lang_explicit"):
        return i18n.get_language()
    return None


def keep_language(request: Request, url: str) -> str:
    """`url` with the organiser's explicit language choice added (unless it names one itself)."""
    language = explicit_language(request)
    if language is None:
        return url
    base, _sep, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name == "lang" for name, _value in pairs):
        return url
    return base + "?" + urlencode([*pairs, ("lang", language)])


def redirect(request: Request, url: str) -> RedirectResponse:
    """A 303 to `url` in the organiser's chosen language."""
    return RedirectResponse(keep_language(request, url), status_code=303)


def lang_field(request: Request) -> Markup:
    """The hidden field that keeps the chosen language through a GET form (empty without a choice)."""
    language = explicit_language(request)
    if language is None:
        return Markup("")
    return Markup('<input type="hidden" name="lang" value="%s">') % escape(language)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    private: bool = True,
    get_path: str | None = None,
) -> Response:
    """An organiser page (never cached). `get_path`: the GET page that a page answering a POST
    stands for, where the language switcher leads."""
    if get_path is not None:
        request.scope["state"]["language_switch_path"] = get_path
    ctx: dict[str, Any] = {
        "lang_field": lambda: lang_field(request),
        "appeal_status_label": labels.appeal_status,
        "moderation_label": labels.moderation,
        "moderation_short_label": labels.moderation_short,
        "visibility_label": labels.visibility,
        "role_label": labels.role,
        "mail_kind_label": labels.mail_kind,
        "action_label": action_label,
        **(context or {}),
    }
    return render_page(request, name, ctx, status=status, private=private)


def form_text(form: object, name: str, limit: int) -> str:
    """A submitted text field, line ends as "\n", trimmed and cut to `limit` ("" when absent)."""
    value = form.get(name) if hasattr(form, "get") else None  # type: ignore[union-attr]
    return value.replace("\r\n", "\n").strip()[:limit] if isinstance(value, str) else ""


async def appeal_or_404(request: Request) -> Row:
    """The appeal the path's `appeal_id` names; 404 without one."""
    appeal = await get_appeal_by_id(services(request).db, appeal_id=request.path_params["appeal_id"])
    if appeal is None:
        raise HTTPException(404, "no such appeal")
    return appeal
