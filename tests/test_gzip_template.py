"""A page compressed once, with a piece that changes put in per request (petition.compression.GzipTemplate):
what a client decodes, strictly (CRC-32 and length checked), is the page with its piece."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from petition.compression import GzipTemplate, _CrcOver

PAGE = b"<!doctype html><title>Appeal</title>" + "<p>Kriegsdienstverweigerer — отказники</p>".encode() * 400


@pytest.mark.parametrize(
    "parts",
    [
        [PAGE],
        [PAGE[:5000], PAGE[5000:]],
        [b"", PAGE],
        [PAGE, b""],
        [b"<a>", b"", b"</a>"],
        [os.urandom(70_000), PAGE, os.urandom(10)],  # parts longer than a stored block may be
    ],
    ids=["whole", "two parts", "empty first", "empty last", "empty middle", "incompressible"],
)
@pytest.mark.parametrize("piece", [b"", b"0123456789abcdef" * 4, os.urandom(200)], ids=["none", "token", "binary"])
def test_the_body_is_the_gzip_of_the_parts_joined_by_the_piece(parts, piece):
    body = GzipTemplate(parts).body(piece)
    assert gzip.decompress(body) == piece.join(parts)
    # One gzip member, and nothing after it: what a strict decoder reads to the end.
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decoder.decompress(body) == piece.join(parts)
    assert decoder.eof and decoder.unused_data == b""


def test_each_visitor_gets_their_own_piece_from_one_compression():
    template = GzipTemplate([PAGE[:3000], PAGE[3000:]])
    first, second = template.body(b"a" * 64), template.body(b"b" * 64)
    assert first != second
    assert gzip.decompress(first) == PAGE[:3000] + b"a" * 64 + PAGE[3000:]
    assert gzip.decompress(second) == PAGE[:3000] + b"b" * 64 + PAGE[3000:]
    # Compressed still: the parts once, the piece as it is.
    assert len(first) < len(PAGE) // 4


def test_a_changed_byte_fails_the_check_a_client_makes():
    body = bytearray(GzipTemplate([PAGE[:3000], PAGE[3000:]]).body(b"t" * 64))
    body[-8] ^= 1  # the CRC-32
    with pytest.raises((OSError, zlib.error)):
        gzip.decompress(bytes(body))


def test_a_piece_longer_than_a_stored_block_is_refused():
    template = GzipTemplate([b"<p>", b"</p>"])
    assert gzip.decompress(template.body(b"x" * 0xFFFF)) == b"<p>" + b"x" * 0xFFFF + b"</p>"
    with pytest.raises(ValueError, match="stored block"):
        template.body(b"x" * 0x10000)
    with pytest.raises(ValueError, match="no parts"):
        GzipTemplate([])


@pytest.mark.parametrize("length", [0, 1, 7, 4096, 70_000])
def test_the_crc_carried_over_a_part_is_zlibs(length):
    data = os.urandom(length)
    over = _CrcOver(data)
    for crc in [0, 1, 0xFFFFFFFF, 0x80000000, *(int.from_bytes(os.urandom(4), "big") for _ in range(50))]:
        assert over(crc) == zlib.crc32(data, crc)
