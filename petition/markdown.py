"""Appeal texts are Markdown written by organisers: rendered with raw HTML disabled."""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt


@cache
def _parser() -> MarkdownIt:
    # "js-default": CommonMark without raw HTML, and links limited to safe schemes.
    return MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": True})


def render_markdown(text: str) -> str:
    return _parser().render(text)
