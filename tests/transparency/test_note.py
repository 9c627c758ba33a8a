"""Signed notes and checkpoints, held to golang.org/x/mod/sumdb/note's published example."""

from __future__ import annotations

import base64

import pytest

from petition.transparency.note import Checkpoint, NoteError, Signer, Verifier, open_note

# The example of golang.org/x/mod/sumdb/note's documentation and tests.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_signs_byte_for_byte_as_go_does():
    signer = Signer.parse(GO_SKEY)
    assert signer.vkey() == GO_VKEY
    assert signer.skey() == GO_SKEY
    assert signer.sign(GO_TEXT) == GO_NOTE  # Ed25519 is deterministic
    assert open_note(GO_NOTE, Verifier.parse(GO_VKEY)) == GO_TEXT


def test_a_changed_note_or_another_key_is_refused():
    verifier = Verifier.parse(GO_VKEY)
    with pytest.raises(NoteError):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)
    other = Signer.generate("PeterNeumann")
    with pytest.raises(NoteError):  # same name, another key: its hash differs, so it is not ours
        open_note(other.sign(GO_TEXT), verifier)
    with pytest.raises(NoteError):
        open_note(GO_TEXT, verifier)  # no signature at all
    # A witness's cosignature beside ours does not hurt.
    cosigned = GO_NOTE + other.sign(GO_TEXT).rpartition("\n\n")[2]
    assert open_note(cosigned, verifier) == GO_TEXT


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),  # hash of another key
        GO_VKEY.replace("PeterNeumann", "Peter Neumann"),
        "PeterNeumann+c74f20a3",
        GO_VKEY[:-4],
        GO_VKEY.replace("+ARp", "+AhP"),  # not algorithm 1
    ],
)
def test_malformed_verifier_keys(vkey: str):
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


def test_checkpoint_text_round_trip():
    root = bytes(range(32))
    checkpoint = Checkpoint("petition.example/log", 42, root)
    text = checkpoint.text()
    assert text == f"petition.example/log\n42\n{base64.b64encode(root).decode()}\n"
    assert Checkpoint.parse(text) == checkpoint
    signer = Signer.generate("petition.example/log")
    note = signer.sign(text)
    lines = note.split("\n")
    assert lines[3] == "" and lines[4].startswith("— petition.example/log ")
    assert Checkpoint.parse(open_note(note, signer.verifier())) == checkpoint
    for bad in (
        "x\n042\n" + text.split("\n")[2] + "\n",
        "x\n1\nAAAA\n",
        "x\n1\n",
        "x\n-1\n" + text.split("\n")[2] + "\n",
    ):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)
