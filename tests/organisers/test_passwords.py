"""Organiser passwords: strong argon2id parameters in production, cheap ones in this test process only."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import argon2
from argon2.profiles import RFC_9106_LOW_MEMORY

import petition
from petition.organisers import passwords
from tests.conftest import CHEAP_HASHER

PASSWORD = "correct horse battery staple"

#: Run in a fresh interpreter, as `petition serve` runs: no pytest, no tests/conftest.py.
PRODUCTION = """
import json, sys
from petition.organisers import passwords
cheap = sys.argv[1]
print(json.dumps({
    "hash": passwords.hash_password("correct horse battery staple"),
    "verifies_a_cheap_hash": passwords.verify_password(cheap, "correct horse battery staple"),
    "rehashes_a_cheap_hash": passwords.needs_rehash(cheap),
}))
"""


def test_production_hashes_with_rfc_9106_parameters_and_upgrades_a_cheaper_hash():
    cheap = CHEAP_HASHER.hash(PASSWORD)
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION, cheap],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(petition.__file__).resolve().parent.parent,
        check=True,
    )
    found = json.loads(result.stdout)
    assert argon2.extract_parameters(found["hash"]) == RFC_9106_LOW_MEMORY
    # Were a cheap hash ever stored, it would still let its organiser in, and be replaced at that login.
    assert found["verifies_a_cheap_hash"] is True
    assert found["rehashes_a_cheap_hash"] is True


def test_this_test_process_hashes_cheaply_and_its_hashes_verify():
    made = passwords.hash_password(PASSWORD)
    parameters = argon2.extract_parameters(made)
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (
        CHEAP_HASHER.time_cost,
        CHEAP_HASHER.memory_cost,
        CHEAP_HASHER.parallelism,
    )
    assert parameters.type is argon2.Type.ID
    assert passwords.verify_password(made, PASSWORD)
    assert not passwords.verify_password(made, PASSWORD + "!")
    assert not passwords.needs_rehash(made)
    assert asyncio.run(passwords.verify_password_async(made, PASSWORD))
    # An unknown account is checked against the dummy hash, which is cheap here too.
    assert argon2.extract_parameters(passwords._dummy_hash()) == parameters
    assert not asyncio.run(passwords.verify_password_async(None, PASSWORD))
