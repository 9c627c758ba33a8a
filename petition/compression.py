"""gzip for text responses (GZIP=true, the default): HTML, JSON, CSV, SVG, CSS.

Starlette's GZipMiddleware does the work; this adds what it leaves out. Bodies under 500 bytes
are sent as they are (gzip's header would eat the gain), and so are formats that are
compressed already (PNG, ICO, PDF, ZIP: its list, plus ours) and responses that already carry
a Content-Encoding. A compressed body is another representation of the resource, so its ETag
becomes weak (`W/"…"`, as nginx does), and so does every tag a client that accepts gzip is
sent, compressed or not, 200 or 304 (one tag for one resource and client); `If-None-Match`
with either form still gets its 304 (petition.publish.http compares tags weakly).

Behind a reverse proxy that compresses, keep GZIP=true: the proxy passes on what is compressed
already, and would compress a cached page for every request (docs/reach.md).

A cached page (petition.publish.pages) is compressed once per stored copy, not per request
(`GzipTemplate`): compressing the appeal page's ~40 kB cost the server ten times what sending
it does (docs/benchmarks.md).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MINIMUM_SIZE = 500
#: zlib's default: level 9 costs about twice the CPU for a few per cent.
LEVEL = 6
EXCLUDED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "application/pdf",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "application/octet-stream",
)


#: EXCLUDED as Starlette compares them (`_normalize_content_types`), made once.
_EXCLUDED = frozenset(t.partition(";")[0].strip().lower() for t in EXCLUDED)


class Compression:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL, exclude_content_types=EXCLUDED)
        self._replay = GZipMiddleware(
            _replay, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL, exclude_content_types=EXCLUDED
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.gzip(scope, receive, send)
            return
        if not accepts_gzip(scope):
            # What Starlette's identity responder does, without its cost: it normalised its
            # 19 excluded types and parsed the headers twice for every request (docs/benchmarks.md).
            await self.app(scope, receive, _Identity(send))
            return
        await self.gzip(scope, receive, _weak_etags(send))

    async def send_gzipped(self, scope: Scope, receive: Receive, send: Send, start: Message, body: bytes) -> None:
        """Send a response made elsewhere (a cached page) to a client that accepts gzip, as this
        layer sends the application's (for a client that does not: `vary_as_identity`)."""
        await self._replay({**scope, _REPLAY: (start, body)}, receive, _weak_etags(send))


_REPLAY = "petition.compression.replay"


async def _replay(scope: Scope, receive: Receive, send: Send) -> None:
    start, body = scope[_REPLAY]
    await send(start)
    await send({"type": "http.response.body", "body": body})


#: A gzip member's header (RFC 1952): deflate, no name or comment, no time, no OS said.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: The header a response compressed here gets last, where Starlette's responder puts it.
CONTENT_ENCODING = (b"content-encoding", b"gzip")


class GzipTemplate:
    """`parts` joined by a short piece that changes (a visitor's CSRF token), gzipped, with each
    part compressed once.

    Each part is compressed on its own into raw deflate, flushed to a byte boundary (all but
    the last, which ends the stream); a piece goes between them as a stored block, which
    needs no compressing (RFC 1951, 3.2.4). A part cannot refer back into the one before,
    which costs a few bytes a boundary. The gzip trailer's CRC-32 is carried across each
    part after the first by `_CrcOver` rather than by a pass over it, so a body costs neither
    a compression nor a pass over the page.
    """

    __slots__ = ("crc", "over", "segments", "size")

    def __init__(self, parts: Sequence[bytes], level: int = LEVEL) -> None:
        if not parts:
            raise ValueError("a template of no parts")
        last = len(parts) - 1
        segments = []
        for i, part in enumerate(parts):
            deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
            segments.append(deflate.compress(part) + deflate.flush(zlib.Z_FINISH if i == last else zlib.Z_SYNC_FLUSH))
        self.segments = tuple(segments)
        self.crc = zlib.crc32(parts[0])
        self.over = tuple(_CrcOver(part) for part in parts[1:])
        self.size = sum(len(part) for part in parts)

    def body(self, piece: bytes = b"") -> bytes:
        """The gzip of `piece.join(parts)`."""
        if len(piece) > 0xFFFF:
            raise ValueError("a piece longer than one stored block")
        stored = b"\x00" + struct.pack("<HH", len(piece), len(piece) ^ 0xFFFF) + piece
        out = [_GZIP_HEADER, self.segments[0]]
        crc = self.crc
        for over, segment in zip(self.over, self.segments[1:], strict=True):
            crc = over(zlib.crc32(piece, crc))
            out += (stored, segment)
        size = self.size + len(piece) * len(self.over)
        out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
        return b"".join(out)


class _CrcOver:
    """`zlib.crc32(data, crc)` for one `data`, for any `crc`, without a pass over `data`.

    Carried over fixed bytes, a CRC-32 changes as an affine map over GF(2):
    `crc32(data, x) == L(x) ^ crc32(data, 0)` with L linear (the pre- and post-inversions
    fold into the constant). L is kept as four tables, one per byte of `x`, built from L's
    values at the 32 one-bit inputs: 4 lookups a call against a CRC pass over the data
    (~11 µs for the appeal page's 40 kB). tests/test_gzip_template.py checks it against zlib.
    """

    __slots__ = ("constant", "tables")

    def __init__(self, data: bytes) -> None:
        self.constant = zlib.crc32(data, 0)
        basis = [zlib.crc32(data, 1 << bit) ^ self.constant for bit in range(32)]
        tables = []
        for byte in range(4):
            table = [0] * 256
            for value in range(1, 256):
                low = value & -value  # the lowest bit set: the rest of `value` is already in the table
                table[value] = table[value ^ low] ^ basis[8 * byte + low.bit_length() - 1]
            tables.append(tuple(table))
        self.tables = tuple(tables)

    def __call__(self, crc: int) -> int:
        t0, t1, t2, t3 = self.tables
        return t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24] ^ self.constant


def gzipped_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What Starlette's gzip responder and `_weak_etags` make of a compressed response's headers,
    but Content-Length (which the caller sets) and Content-Encoding (which goes last)."""
    out = _weakened(headers)
    _add_vary(out)
    return out


def accepts_gzip(scope: Scope) -> bool:
    """Whether Starlette's gzip layer would compress for this request: its first Accept-Encoding
    says gzip (Starlette reads the first alone, so must whatever answers beside it)."""
    for k, v in scope["headers"]:
        if k == b"accept-encoding":
            return b"gzip" in v
    return False


def _weak_etags(send: Send) -> Send:
    async def weaken_etag(message: Message) -> None:
        if message["type"] == "http.response.start":
            # Every tag this client sees is weak, whether this body was compressed or left as it
            # is (under MINIMUM_SIZE): a 304 cannot know which the 200 would have been, and the
            # 200 and the 304 must carry the same tag. Weak tags revalidate all the same.
            message["headers"] = _weakened(message.get("headers", []))
        await send(message)

    return weaken_etag


def _weakened(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with each ETag made weak (`W/"…"`)."""
    return [(k, b"W/" + v if k.lower() == b"etag" and not v.startswith(b"W/") else v) for k, v in headers]


def gzip_would_apply(start: Message, length: int) -> bool:
    """Whether gzip applies to a response with this start and a whole body of `length` bytes."""
    return length >= MINIMUM_SIZE and not _left_alone(start)


def vary_as_identity(start: Message, length: int) -> None:
    """Add `Vary: Accept-Encoding` to the start of a whole body of `length` bytes, where
    Starlette's identity responder would (for a client that does not accept gzip)."""
    if gzip_would_apply(start, length):
        _add_vary(start.setdefault("headers", []))


class _Identity:
    """The response as it is, with `Vary: Accept-Encoding` where gzip would have applied.

    Starlette's `IdentityResponder` (its GZipMiddleware, for a client that does not accept
    gzip) adds `Vary: Accept-Encoding` to a response gzip could have compressed: not one
    with a Content-Encoding, a 206, an excluded type, a file sent by path, or a whole body
    under MINIMUM_SIZE. This does the same, and holds the start back only where that
    depends on the body; tests/test_compression.py compares the two message by message.
    """

    __slots__ = ("pending", "send")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.pending: Message | None = None  # a start held back until its first body says more

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if _left_alone(message):
                await self.send(message)
            else:
                self.pending = message
            return
        start = self.pending
        if start is not None and kind in ("http.response.body", "http.response.pathsend"):
            self.pending = None
            if kind == "http.response.body" and (
                message.get("more_body", False) or len(message.get("body", b"")) >= MINIMUM_SIZE
            ):
                _add_vary(start.setdefault("headers", []))
            await self.send(start)
        await self.send(message)


def _left_alone(start: Message) -> bool:
    """A response gzip never touches: sent at once, as Starlette sends it."""
    if start["status"] == 206:
        return True
    media_type = ""
    for key, value in start.get("headers", ()):
        if key == b"content-encoding":
            return True
        if key == b"content-type" and not media_type:
            media_type = value.decode("latin-1").partition(";")[0].strip().lower()
    types = {media_type, media_type.partition("/")[0] + "/*"}
    if media_type.startswith("application/grpc+"):
        types.add("application/grpc")
    return not types.isdisjoint(_EXCLUDED)


def _add_vary(headers: list[tuple[bytes, bytes]]) -> None:
    """`Vary: Accept-Encoding` added as Starlette's `MutableHeaders.add_vary_header` adds it:
    joined to the values before, in the place of the first `vary`, the others removed."""
    found = [i for i, (key, _) in enumerate(headers) if key == b"vary"]
    value = ", ".join([*(headers[i][1].decode("latin-1") for i in found), "Accept-Encoding"]).encode("latin-1")
    for i in reversed(found[1:]):
        del headers[i]
    if found:
        headers[found[0]] = (b"vary", value)
    else:
        headers.append((b"vary", value))
