"""Host names for the property tests of the idna fast paths: mostly near the edge of what the
fast path takes (hyphens, "xn--", label and name lengths, letter case, trailing dots) and
some beyond it (non-ASCII letters, underscores, spaces)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import example
from hypothesis import strategies as st

_LABEL_CHARS = st.sampled_from(list("aZ09-x-nN") + ["-", "--", "ab--", "xn--", "ß", "Σ", "_", " ", "é", "ａ"])
_LABELS = st.one_of(
    st.lists(_LABEL_CHARS, max_size=12).map("".join),
    st.integers(min_value=55, max_value=70).map(lambda n: "a" * n),  # about 63, the longest label
)
HOST_NAMES = st.one_of(
    st.lists(_LABELS, min_size=1, max_size=5).map(".".join),
    st.lists(_LABELS, min_size=1, max_size=3).map(lambda labels: ".".join(labels) + "."),
    # about 253, the longest name
    st.integers(min_value=240, max_value=260).map(lambda n: ".".join(["a" * 62] * 5)[:n].rstrip(".")),
)

#: The edges, every time.
EDGES = [
    "ab--cd.org",
    "xn--strae-oqa.de",
    "XN--STRAE-OQA.DE",
    "xn--zz.de",
    "a" * 63 + ".org",
    "a" * 64 + ".org",
    ".".join(["a" * 63] * 3) + "." + "a" * 61,  # 253
    ".".join(["a" * 63] * 3) + "." + "a" * 62,  # 254
    "-a.org",
    "a-.org",
    "Example.ORG",
    "example.org.",
    "exa_mple.org",
    "10.0.0.12",
]


def with_edges(test: Callable[..., Any]) -> Callable[..., Any]:
    """The test, run on every edge as well as on what hypothesis draws."""
    for edge in EDGES:
        test = example(edge)(test)
    return test
