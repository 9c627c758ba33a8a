"""The urlencoded form parser every POST goes through: the standard library's answer, faster."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petition.web import parse_urlencoded

# What browsers send and what they never would: escapes (valid, broken, not UTF-8), "+", "=",
# empty pieces, names without a value.
PIECES = st.text(alphabet=st.sampled_from(list("ab=&+%20%2B%3D%C3%A9%FF%E2%82%ACz ")), max_size=40)


def stdlib(body: bytes, max_fields: int) -> list[tuple[str, str]]:
    return parse_qsl(
        body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=max_fields
    )


def outcome(parse, body: bytes, max_fields: int) -> object:  # noqa: ANN001
    try:
        return list(parse(body, max_fields))
    except (ValueError, UnicodeDecodeError) as exc:
        return type(exc)


@given(PIECES, st.integers(min_value=0, max_value=8))
def test_the_pairs_are_those_of_parse_qsl(text, max_fields):
    body = text.encode()
    assert outcome(lambda b, m: parse_urlencoded(b, max_fields=m).multi_items(), body, max_fields) == outcome(
        stdlib, body, max_fields
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"&&",
        b"a",
        b"a=",
        b"=b",
        b"a=1&a=2",
        b"a=b=c",
        b"name=Stra%C3%9Fe+e.V.&comment=line%0D%0Aline",
        b"x=%ZZ",
        b"x=%FF",  # not UTF-8
        b"x=\xff",  # not UTF-8 either
        ("org=" + quote_plus("Мир & Friends 100%")).encode(),
    ],
)
def test_known_bodies_parse_as_parse_qsl_does(body):
    assert outcome(lambda b, m: parse_urlencoded(b, max_fields=m).multi_items(), body, 60) == outcome(stdlib, body, 60)


def test_more_fields_than_allowed_are_refused():
    with pytest.raises(ValueError):
        parse_urlencoded(b"a=1&b=2&c=3", max_fields=2)
