"""Reading organiser-area query and form values: bad input is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException

MAX_PAGE = 1_000_000


def page_number(params: Mapping[str, Any]) -> int:
    raw = params.get("page") or "1"
    try:
        page = int(str(raw))
    except ValueError as exc:
        raise HTTPException(400, "page must be a positive whole number") from exc
    if not 1 <= page <= MAX_PAGE:
        raise HTTPException(400, "page must be a positive whole number")
    return page


def optional_id(params: Mapping[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise HTTPException(400, f"{name} must be a whole number") from exc
    if value < 1:
        raise HTTPException(400, f"{name} must be a whole number")
    return value


def text(params: Mapping[str, Any], name: str, limit: int = 200) -> str:
    raw = params.get(name)
    return raw.strip()[:limit] if isinstance(raw, str) else ""
