"""C2SP signed notes with Ed25519 keys, and the C2SP tlog-checkpoint they carry.

    verifier key  <name>+<key hash, 8 hex>+<base64(0x01 ‖ 32-byte public key)>
    signer key    PRIVATE+KEY+<name>+<key hash>+<base64(0x01 ‖ 32-byte seed)>
    key hash      the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), big-endian
    signed note   <text, ending in "\n">  "\n"  "— <name> <base64(key hash ‖ signature)>\n" …
    checkpoint    <origin>\n<tree size>\n<base64 root hash>\n[extension lines]

The formats are golang.org/x/mod/sumdb/note's, so Go's tools (and any witness or verifier
that speaks them) read our checkpoints; the tests hold this module to that package's
published example.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ED25519 = 1
_SIGN_PREFIX = "— "  # an em dash and a space
_MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A key, note or checkpoint that is malformed or does not verify."""


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise NoteError("a key name is one word without '+'")


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("bad base64") from exc


@dataclass(frozen=True)
class Verifier:
    name: str
    hash: bytes  # 4 bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        name, plus, rest = vkey.partition("+")
        hash_hex, plus2, key_b64 = rest.partition("+")
        if not plus or not plus2:
            raise NoteError("a verifier key is <name>+<hash>+<key>")
        _check_name(name)
        raw = _b64decode(key_b64)
        if len(hash_hex) != 8 or len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("not an Ed25519 verifier key")
        try:
            hash_ = bytes.fromhex(hash_hex)
        except ValueError as exc:
            raise NoteError("bad key hash") from exc
        if key_hash(name, raw[1:]) != hash_:
            raise NoteError("the key hash does not match the key")
        return cls(name, hash_, Ed25519PublicKey.from_public_bytes(raw[1:]))

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        head, _, rest = skey.partition("+KEY+")
        if head != "PRIVATE":
            raise NoteError("a signer key starts with PRIVATE+KEY+")
        name, _, rest = rest.partition("+")
        hash_hex, _, key_b64 = rest.partition("+")
        _check_name(name)
        raw = _b64decode(key_b64)
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("not an Ed25519 signer key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.hash.hex() != hash_hex:
            raise NoteError("the key hash does not match the key")
        return signer

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public_bytes)

    def skey(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.hash.hex()}+{encoded}"

    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ED25519]) + self.public_bytes).decode()
        return f"{self.name}+{self.hash.hex()}+{encoded}"

    def verifier(self) -> Verifier:
        return Verifier.parse(self.vkey())

    def sign(self, text: str) -> str:
        """The signed note of `text` (which ends with a newline)."""
        data = _note_text(text)
        signature = base64.b64encode(self.hash + self.private_key.sign(data)).decode()
        return f"{text}\n{_SIGN_PREFIX}{self.name} {signature}\n"


def _note_text(text: str) -> bytes:
    if not text.endswith("\n") or "\r" in text:
        raise NoteError("a note's text ends with a newline and holds no carriage return")
    return text.encode()


def open_note(note: str, verifier: Verifier) -> str:
    """The text of `note` if `verifier` signed it; NoteError otherwise. Signatures by other
    keys are allowed and ignored (witnesses may cosign a checkpoint)."""
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise NoteError("not a signed note")
    text += "\n"
    data = _note_text(text)
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError("too many signatures")
    for line in lines:
        if not line.startswith(_SIGN_PREFIX):
            raise NoteError("a signature line starts with an em dash")
        name, _, encoded = line[len(_SIGN_PREFIX) :].partition(" ")
        raw = _b64decode(encoded)
        if len(raw) < 5:
            raise NoteError("signature too short")
        if name == verifier.name and raw[:4] == verifier.hash:
            if verifier.verify(data, raw[4:]):
                return text
            raise NoteError("the signature does not verify")
    raise NoteError(f"not signed by {verifier.name}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0]:
            raise NoteError("a checkpoint is origin, size and root, a line each")
        origin, size, root, *extensions = lines[:-1]
        if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError("a checkpoint's size is a decimal number")
        raw = _b64decode(root)
        if len(raw) != 32:
            raise NoteError("a checkpoint's root is 32 bytes")
        if any(not line for line in extensions):
            raise NoteError("a checkpoint has no empty line")
        return cls(origin, int(size), raw, tuple(extensions))
