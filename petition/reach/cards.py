"""Share cards: the 1200×630 PNG a link to an appeal shows on social networks and in chats.

Drawn by Pillow (with libraqm: shaping, bidi) in the dossiers' process pool, never on the
event loop (`render_card` is what the pool runs), with the fonts the dossiers use: Noto Sans
from fontconfig (Debian's fonts-noto-core), bold for the title. A character Noto Sans has no
glyph for is drawn with the first font fontconfig lists that has one (a Noto family first),
so a title in Armenian or Hebrew is not drawn as empty boxes; `runs` says which font draws
what, so tests can check that no character falls to the .notdef glyph.

`CardStore` keeps each drawing under DATA_DIR/cards, named by its version
(`petition.publish.share.card_version`): a card is drawn once per step of the count, per
appeal, language and title, by whichever process asks first; older versions are removed.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from petition.publish.share import CARD_SIZE

WIDTH, HEIGHT = CARD_SIZE
MARGIN = 72
INK = (255, 255, 255)
BACKGROUND = (29, 79, 145)  # the badges' blue (#1d4f91)
BAND = (240, 180, 41)
SOFT = (214, 226, 244)
TITLE_SIZES = (64, 56, 48)
TITLE_LINES = 4
_NOTO = {False: "Noto Sans:style=Regular", True: "Noto Sans:style=Bold"}


class FontsMissing(RuntimeError):
    """Noto Sans is not installed (Debian: fonts-noto-core)."""


@dataclass(frozen=True)
class CardText:
    """Everything drawn on a card (already translated and formatted)."""

    title: str
    count_line: str
    site_name: str
    language: str


@functools.cache
def _fc(*args: str) -> list[str]:
    program = shutil.which(args[0])
    if program is None:
        return []
    done = subprocess.run([program, *args[1:]], capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    return [line for line in done.stdout.splitlines() if line.strip()]


@functools.cache
def primary_font(bold: bool) -> str:
    """The file of Noto Sans (bold or regular), as fontconfig finds it."""
    for line in _fc("fc-match", "-f", "%{family}|%{file}\n", _NOTO[bold]):
        family, _, path = line.partition("|")
        if "Noto Sans" in family.split(",") and Path(path).is_file():
            return path
    raise FontsMissing("Noto Sans is not installed: share cards need it (Debian: fonts-noto-core)")


@functools.cache
def _coverage(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True, fontNumber=0) as font:
        return frozenset(font.getBestCmap() or {})


@functools.cache
def fallback_font(codepoint: int, bold: bool) -> str | None:
    """A font file with a glyph for `codepoint`: a Noto family first, bold when asked, else None."""
    files = _fc("fc-list", f":charset={codepoint:x}", "file")
    candidates = sorted(
        (line.rstrip(": ").strip() for line in files),
        key=lambda p: (
            "Noto" not in p,
            "Sans" not in p,
            ("Bold" in p) != bold,
            any(w in p for w in ("Italic", "Mono", "Display", "Condensed", "Light", "Black")),
            p,
        ),
    )
    for path in candidates:
        if path.endswith((".ttf", ".otf")) and codepoint in _coverage(path):
            return path
    return None


def font_for(char: str, bold: bool) -> str | None:
    """The file that draws `char` (None: no installed font has it, nor needs one: a space)."""
    primary = primary_font(bold)
    if ord(char) in _coverage(primary) or char.isspace():
        return primary
    return fallback_font(ord(char), bold)


def runs(text: str, *, bold: bool) -> list[tuple[str, str]]:
    """`text` cut where the font that draws it changes: [(font file, text)]. A character no
    font has stays with the primary font (and is drawn as its .notdef box)."""
    out: list[tuple[str, str]] = []
    for char in text:
        path = font_for(char, bold) or primary_font(bold)
        if out and out[-1][0] == path:
            out[-1] = (path, out[-1][1] + char)
        else:
            out.append((path, char))
    return out


@functools.cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def _width(text: str, size: int, bold: bool) -> float:
    return sum(_font(path, size).getlength(part) for path, part in runs(text, bold=bold))


def _draw_line(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, bold: bool, fill: tuple[int, int, int]
) -> None:
    x, y = xy
    for path, part in runs(text, bold=bold):
        font = _font(path, size)
        draw.text((x, y), part, font=font, fill=fill, anchor="ls")
        x += font.getlength(part)


def wrap(text: str, *, size: int, bold: bool, width: float, lines: int) -> list[str]:
    """`text` in at most `lines` lines of `width` pixels; the last one ends in … when cut."""
    words = re.split(r"\s+", text.strip())
    out: list[str] = []
    current = ""
    for word in words:
        trial = f"{current} {word}" if current else word
        if _width(trial, size, bold) <= width or not current:
            current = trial
        else:
            out.append(current)
            current = word
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[:lines]
        last = out[-1]
        while last and _width(last + "…", size, bold) > width:
            last = last[:-1]
        out[-1] = last.rstrip(" ,;:.–—-") + "…"
    # A word wider than the card (a long URL): cut it.
    for i, line in enumerate(out):
        while _width(line, size, bold) > width and len(line) > 1:
            line = line[:-2] + "…"
        out[i] = line
    return out


def render_card(card: CardText) -> bytes:
    """The card as PNG bytes (what the process pool runs)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, HEIGHT - 18, WIDTH, HEIGHT), fill=BAND)
    inner = WIDTH - 2 * MARGIN
    # The largest title size whose lines fit.
    for size in TITLE_SIZES:
        lines = wrap(card.title, size=size, bold=True, width=inner, lines=TITLE_LINES)
        if len(lines) <= 3 or size == TITLE_SIZES[-1]:
            break
    y = MARGIN + size
    for line in lines:
        _draw_line(draw, (MARGIN, y), line, size, True, INK)
        y += int(size * 1.25)
    count_size = 40
    count_lines = wrap(card.count_line, size=count_size, bold=True, width=inner, lines=2)
    bottom = HEIGHT - MARGIN - 10
    site_size = 30
    _draw_line(draw, (MARGIN, bottom), card.site_name, site_size, False, SOFT)
    y = bottom - site_size - 36 - (len(count_lines) - 1) * int(count_size * 1.25)
    for line in count_lines:
        _draw_line(draw, (MARGIN, y), line, count_size, True, BAND)
        y += int(count_size * 1.25)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


class CardStore:
    """Drawn cards on disk (DATA_DIR/cards), by appeal, language and version; each drawn once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._drawing: dict[str, asyncio.Future[bytes]] = {}

    def path(self, slug: str, language: str, version: str) -> Path:
        return self.directory / f"{slug}.{language}.{version}.png"

    async def get(self, *, slug: str, language: str, version: str, draw: Callable[[], Awaitable[bytes]]) -> bytes:
        path = self.path(slug, language, version)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            pass
        key = path.name
        pending = self._drawing.get(key)
        if pending is not None:  # another request of this process is drawing it: share its result
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._drawing[key] = future
        try:
            data = await draw()
            await asyncio.to_thread(self._store, path, data)
            future.set_result(data)
            return data
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self._drawing[key]

    def _store(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".card-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)  # atomic: another process reads the whole file or none
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        slug, language, _version, _ext = path.name.split(".")
        for old in self.directory.glob(f"{slug}.{language}.*.png"):
            if old != path:
                old.unlink(missing_ok=True)
