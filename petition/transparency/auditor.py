#!/usr/bin/env python3
"""Audit a petition site's public log, with nothing of petition's own code.

    python3 scripts/audit_log.py --url https://petition.example [--state audit-state.json] [--key VKEY]
    petition log audit --url https://petition.example [--state …] [--key …]     (the same code)

This one file is the auditor: `scripts/audit_log.py` is a link to it, so it can be copied
and run alone, and `petition log audit` runs it from the installed package. It imports
nothing of petition's (its Merkle and signature checks are its own, written from the RFC and
the C2SP texts, beside petition's in `merkle.py` and `note.py`: two readings of the formats).

Needs only Python 3.11's standard library and `cryptography` (for Ed25519). It fetches the
log's verifier key, its latest checkpoint and every entry, and checks:

1. the checkpoint's signature (C2SP signed note, Ed25519), by the key given with --key or, on
   the first run, the key the site serves (which --state then remembers: a later key is refused);
2. that the entries' Merkle tree (RFC 9162) has the checkpoint's root — every entry is in it,
   in this order;
3. that the checkpoint extends the one kept in --state from the previous run (a consistency
   proof from the site, RFC 9162 §2.1.4): nothing logged before was changed or removed;
4. that each appeal's public list (the JSON API) names exactly the organisations the log says
   are listed and named: the latest event of each entry is `listed` and its visibility `public`;
5. that no anonymous entry carries more than its country and commitment.

It exits 0 when every check holds, 1 otherwise, saying which failed. This file is meant to be
read: it is the whole of what "the list was not padded and no name was removed" rests on.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ANONYMOUS_KEYS = {"appeal", "event", "entry", "country", "visibility", "at", "commitment"}
NAMED_FIELDS = ("organisation_name", "country", "city", "organisation_type", "website")


class AuditError(Exception):
    pass


# --- RFC 9162 --------------------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(hashes: list[bytes]) -> bytes:
    """MTH of the leaf hashes: pairs level by level, an odd last node rising unpaired."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = hashes
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def verify_consistency(first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes) -> None:
    """RFC 9162 §2.1.4.2."""
    if first > second:
        raise AuditError("the log shrank")
    if first == second:
        if proof or first_root != second_root:
            raise AuditError("the same size has another root now: the log was rewritten")
        return
    if first == 0:
        return
    if not proof:
        raise AuditError("an empty consistency proof")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise AuditError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if fr != first_root or sr != second_root or sn != 0:
        raise AuditError("the new checkpoint does not extend the one kept: the log was rewritten")


# --- C2SP signed notes -------------------------------------------------------------------------------


def parse_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    name, _, rest = vkey.strip().partition("+")
    hash_hex, _, encoded = rest.partition("+")
    raw = base64.b64decode(encoded, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise AuditError("the log's key is not an Ed25519 verifier key")
    key_hash = hashlib.sha256(name.encode() + b"\n" + raw[:1] + raw[1:]).digest()[:4]
    if key_hash.hex() != hash_hex:
        raise AuditError("the log's key hash does not match its key")
    return name, key_hash, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    name, key_hash, public_key = parse_key(vkey)
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise AuditError("the checkpoint is not a signed note")
    text += "\n"
    for line in signatures.rstrip("\n").split("\n"):
        signer, _, encoded = line.removeprefix("— ").partition(" ")
        raw = base64.b64decode(encoded, validate=True)
        if signer == name and raw[:4] == key_hash:
            try:
                public_key.verify(raw[4:], text.encode())
            except InvalidSignature:
                raise AuditError("the checkpoint's signature does not verify") from None
            origin, size, root = text.split("\n")[:3]
            return origin, int(size), base64.b64decode(root, validate=True)
    raise AuditError(f"the checkpoint is not signed by {name}")


# --- the site ----------------------------------------------------------------------------------------


def fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "petition-log-audit/1"})  # noqa: S310 - http(s) of --url
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the auditor's own URL
        return bytes(response.read())


def fetch_json(url: str) -> Any:
    return json.loads(fetch(url))


def entries(base: str, size: int) -> list[str]:
    leaves: list[str] = []
    while len(leaves) < size:
        end = min(size, len(leaves) + 1000)
        page = fetch_json(f"{base}/log/entries?start={len(leaves)}&end={end}")["entries"]
        if [item["index"] for item in page] != list(range(len(leaves), end)):
            raise AuditError(f"entries {len(leaves)}–{end} came back out of order or incomplete")
        leaves += [item["leaf"] for item in page]
    return leaves


def public_list(base: str, slug: str) -> Counter[tuple[str, ...]]:
    named: Counter[tuple[str, ...]] = Counter()
    url: str | None = f"{base}/api/appeals/{urllib.parse.quote(slug)}/endorsements"
    while url:
        page = fetch_json(url)
        for item in page["items"]:
            named[(slug, *(str(item.get(name) or "") for name in NAMED_FIELDS))] += 1
        url = page.get("next")
    return named


def logged_list(leaves: list[str]) -> tuple[Counter[tuple[str, ...]], set[str]]:
    """The named organisations the log says are listed, per appeal; and every appeal it names."""
    latest: dict[str, dict[str, Any]] = {}
    appeals: set[str] = set()
    for text in leaves:
        leaf = json.loads(text)
        if json.dumps(leaf, sort_keys=True, separators=(",", ":"), ensure_ascii=False) != text:
            raise AuditError(f"entry {leaf.get('entry')} is not canonical JSON")
        if leaf["visibility"] == "anonymous" and leaf["event"] == "listed" and set(leaf) != ANONYMOUS_KEYS:
            raise AuditError(f"anonymous entry {leaf['entry']} carries {sorted(set(leaf) - ANONYMOUS_KEYS)}")
        latest[leaf["entry"]] = leaf
        appeals.add(leaf["appeal"])
    named: Counter[tuple[str, ...]] = Counter()
    for leaf in latest.values():
        if leaf["event"] == "listed" and leaf["visibility"] == "public":
            named[(leaf["appeal"], *(str(leaf.get(name) or "") for name in NAMED_FIELDS))] += 1
    return named, appeals


def audit(base: str, state_path: Path | None, vkey: str | None) -> list[str]:
    """What failed (empty: everything holds)."""
    state = json.loads(state_path.read_text()) if state_path and state_path.exists() else {}
    key = vkey or state.get("key") or fetch(f"{base}/log/key").decode()
    served = fetch(f"{base}/log/key").decode().strip()
    if served != key.strip():
        return [f"the site now serves another key ({served}) than the one trusted ({key.strip()})"]
    failures: list[str] = []
    for _attempt in range(3):
        origin, size, root = open_checkpoint(fetch(f"{base}/log/checkpoint").decode(), key)
        leaves = entries(base, size)
        if tree_root([leaf_hash(leaf.encode()) for leaf in leaves]) != root:
            return [f"the {size} entries do not make the checkpoint's root"]
        logged, appeals = logged_list(leaves)
        appeals |= {item["slug"] for item in fetch_json(f"{base}/api/appeals")}
        listed: Counter[tuple[str, ...]] = Counter()
        for slug in sorted(appeals):
            listed += public_list(base, slug)
        # The list may have changed while it was read: the same size again, or read it again.
        _o, again, _r = open_checkpoint(fetch(f"{base}/log/checkpoint").decode(), key)
        if again == size:
            break
        time.sleep(2)
    if state.get("size") is not None:
        first, first_root = int(state["size"]), base64.b64decode(state["root"])
        proof = [
            base64.b64decode(h)
            for h in fetch_json(f"{base}/log/proof/consistency?first={first}&second={size}")["hashes"]
        ]
        try:
            verify_consistency(first, size, proof, first_root, root)
        except AuditError as exc:
            failures.append(str(exc))
    for organisation, count in (logged - listed).items():
        failures.append(f"listed in the log, missing from the public list: {organisation} ({count})")
    for organisation, count in (listed - logged).items():
        failures.append(f"on the public list, not listed in the log: {organisation} ({count})")
    if not failures and state_path is not None:
        state_path.write_text(
            json.dumps({"origin": origin, "key": key.strip(), "size": size, "root": base64.b64encode(root).decode()})
            + "\n"
        )
    print(f"{origin}: {size} entries, root {root.hex()}; {sum(logged.values())} named organisations listed")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the site's BASE_URL")
    parser.add_argument("--state", type=Path, help="where the last good checkpoint and key are kept between runs")
    parser.add_argument("--key", help="the verifier key to trust (else the one kept in --state, else the site's)")
    args = parser.parse_args(argv)
    try:
        failures = audit(args.url.rstrip("/"), args.state, args.key)
    except AuditError as exc:
        failures = [str(exc)]
    for failure in failures:
        print("FAILED:", failure)
    print("audit: " + ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
