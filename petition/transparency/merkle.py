"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and their verification.

    leaf hash  = SHA-256(0x00 ‖ leaf bytes)
    node hash  = SHA-256(0x01 ‖ left ‖ right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two below n

Proofs are made from any `SubtreeRoot` — a function giving MTH(D[start:end]) for the
ranges the RFC's recursion asks for (`start` is always a multiple of the largest power
of two that fits in the range) — so a stored tree answers one with O(log n) reads:
`MemoryTree` keeps every complete node, level by level, as a tree in the database will.
The verifiers are the RFC's algorithms (§2.1.3.2 and §2.1.4.2) word for word; they need
nothing but hashes and sizes, and the standalone auditor (`scripts/audit_log.py`) has its
own copy of them, as anyone's would be.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: MTH(D[start:end]) of the tree a proof is made from.
SubtreeRoot = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request for one that cannot exist."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where the RFC splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes (for tests and small trees: O(n))."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])  # an odd node rises unpaired: the RFC's right subtree
        level = paired
    return level[0]


def inclusion_proof(index: int, size: int, subtree: SubtreeRoot) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"no leaf {index} in a tree of {size}")
    proof: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m = start + k, m - k
    proof.reverse()  # the recursion appends on its way back up: deepest sibling first
    return proof


def consistency_proof(first: int, second: int, subtree: SubtreeRoot) -> list[bytes]:
    """PROOF(first, D[second]) (RFC 9162 §2.1.4.1); empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(subtree(start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, whole = start + k, m - k, False
    proof.reverse()
    return proof


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Iterable[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raises ProofError unless `leaf` (a leaf hash) is at `index` of the
    tree of `size` whose root is `root`."""
    if not 0 <= index < size:
        raise ProofError("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            raise ProofError("inclusion proof too long or malformed")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes) -> None:
    """RFC 9162 §2.1.4.2: raises ProofError unless the tree of `second` leaves with root
    `second_root` extends the tree of `first` leaves with root `first_root`."""
    if not 0 <= first <= second:
        raise ProofError("a log never shrinks")
    if first == second:
        if proof or first_root != second_root:
            raise ProofError("one size, two roots")
        return
    if first == 0:
        if proof:
            raise ProofError("nothing to prove from an empty tree")
        return
    if not proof or any(len(c) != HASH_SIZE for c in proof):
        raise ProofError("consistency proof empty or malformed")
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if fr != first_root or sr != second_root or sn != 0:
        raise ProofError("consistency proof does not lead to both roots")


class MemoryTree:
    """Leaf hashes and every complete node above them, level by level: MTH of any range the
    proofs ask for from O(log n) stored nodes. Appending costs O(1) amortised."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash, and the complete nodes it completes."""
        level = 0
        self.levels[0].append(leaf)
        while len(self.levels[level]) % 2 == 0:
            nodes = self.levels[level]
            parent = node_hash(nodes[-2], nodes[-1])
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(parent)
            level += 1

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range a proof asks for (see the module's text)."""
        n = end - start
        if n <= 0 or end > self.size:
            raise ProofError(f"no range {start}:{end} in a tree of {self.size}")
        if n & (n - 1) == 0 and start % n == 0:
            return self.levels[n.bit_length() - 1][start // n]
        k = split_point(n)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.subtree)

    def consistency(self, first: int, second: int | None = None) -> list[bytes]:
        return consistency_proof(first, self.size if second is None else second, self.subtree)
