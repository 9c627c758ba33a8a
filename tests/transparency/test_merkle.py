"""The Merkle tree against RFC 6962/9162's test vectors and against the RFC's recursive
definitions, written out here as plainly as the RFC states them."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petition.transparency.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex
# The certificate-transparency test vectors (shared by every CT and tlog implementation).
LEAVES = [
    h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    h(x)
    for x in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def test_roots_of_the_reference_trees():
    tree = MemoryTree()
    assert tree.root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for n, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf_hash(leaf))
        assert tree.root() == ROOTS[n - 1] == root_of([leaf_hash(x) for x in LEAVES[:n]])
        for size in range(1, n + 1):  # older roots stay answerable from the grown tree
            assert tree.root(size) == ROOTS[size - 1]


def test_the_reference_proofs():
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    inclusion = [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                 h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"), ROOTS[3]]  # fmt: skip
    assert tree.inclusion(5) == inclusion
    verify_inclusion(5, 8, leaf_hash(LEAVES[5]), inclusion, ROOTS[7])
    with pytest.raises(ProofError):
        verify_inclusion(4, 8, leaf_hash(LEAVES[5]), inclusion, ROOTS[7])
    assert tree.inclusion(2, 3) == [ROOTS[1]]
    consistency = [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                   h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"), ROOTS[3]]  # fmt: skip
    assert tree.consistency(6, 8) == consistency
    verify_consistency(6, 8, consistency, ROOTS[5], ROOTS[7])
    with pytest.raises(ProofError):
        verify_consistency(6, 8, consistency, ROOTS[4], ROOTS[7])
    two_to_five = [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                   h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]  # fmt: skip
    assert tree.consistency(2, 5) == two_to_five
    verify_consistency(2, 5, two_to_five, ROOTS[1], ROOTS[4])


# The RFC's definitions, recursively and without storage (§2.1.1, §2.1.3.1, §2.1.4.1).
def mth(d: list[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return subproof(m, d[:k], b) + [mth(d[k:])] if m <= k else subproof(m - k, d[k:], False) + [mth(d[:k])]


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 70), data=st.data())
def test_proofs_equal_the_rfc_definitions_and_verify(size: int, data: st.DataObject):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MemoryTree(leaves)
    assert tree.root() == mth(leaves) == root_of(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion(index)
    assert proof == path(index, leaves)
    verify_inclusion(index, size, leaves[index], proof, tree.root())
    first = data.draw(st.integers(0, size))
    proof = tree.consistency(first)
    assert proof == ([] if first in (0, size) else subproof(first, leaves, True))
    verify_consistency(first, size, proof, tree.root(first), tree.root())


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, 40), data=st.data())
def test_a_changed_proof_or_leaf_never_verifies(size: int, data: st.DataObject):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MemoryTree(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion(index)
    with pytest.raises(ProofError):  # another leaf at that place
        verify_inclusion(index, size, leaf_hash(b"forged"), proof, tree.root())
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        forged = [*proof[:at], bytes(32), *proof[at + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaves[index], forged, tree.root())
        with pytest.raises(ProofError):  # a proof cut short
            verify_inclusion(index, size, leaves[index], proof[:-1], tree.root())
    first = data.draw(st.integers(1, size - 1))
    proof = tree.consistency(first)
    rewritten = MemoryTree([*leaves[: first - 1], leaf_hash(b"rewritten"), *leaves[first:]])
    with pytest.raises(ProofError):  # history rewritten under an old checkpoint
        verify_consistency(first, size, proof, tree.root(first), rewritten.root())
    with pytest.raises(ProofError):
        verify_consistency(first, size, rewritten.consistency(first), tree.root(first), rewritten.root())


def test_requests_for_proofs_that_cannot_exist():
    tree = MemoryTree(leaf_hash(x) for x in LEAVES)
    with pytest.raises(ProofError):
        tree.inclusion(8)
    with pytest.raises(ProofError):
        tree.consistency(9, 8)
    with pytest.raises(ProofError):
        tree.root(9)
    with pytest.raises(ProofError):  # a log that shrank
        verify_consistency(8, 6, [], ROOTS[7], ROOTS[5])
    with pytest.raises(ProofError):  # one size, two roots
        verify_consistency(8, 8, [], ROOTS[7], ROOTS[6])
    verify_consistency(0, 8, [], EMPTY_ROOT, ROOTS[7])
