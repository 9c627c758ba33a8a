"""What a failed organiser login leaves in the database: keyed fingerprints, no addresses."""

from __future__ import annotations

import hashlib
import re

from petition.organisers.throttle import IP_LIMIT
from tests.organisers.support import add_organiser, login
from tests.support import db_rows

ADDRESS = "198.51.100.23"


def test_failed_logins_store_no_raw_ip_address(make_site, database_url):
    guesser = make_site(ip=ADDRESS).client
    add_organiser(guesser, "ida@organisers.example", "admin")
    for n in range(IP_LIMIT):
        login(guesser, f"guess{n}@organisers.example", "wrong password guess", expect=400)

    rows = db_rows(database_url, "SELECT * FROM login_failures")
    assert len(rows) == IP_LIMIT
    # Someone who reads the table (or a backup of it) learns no address, not even a network.
    assert "198.51.100" not in str(rows) and "organisers.example" not in str(rows)
    fingerprints = {r["ip"] for r in rows}
    assert len(fingerprints) == 1  # one address, one fingerprint: still counted per address
    [fingerprint] = fingerprints
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    # Keyed with SECRET_KEY: hashing every possible address does not find it.
    assert fingerprint not in {
        hashlib.sha256(spelling.encode()).hexdigest()
        for spelling in (ADDRESS, f"login-ip:{ADDRESS}", f"login:{ADDRESS}")
    }

    # Throttling per address works as before: this address is held back, even for a real account,
    login(guesser, "ida@organisers.example", expect=429)
    # and another address is not.
    login(make_site(ip="198.51.100.24").client, "ida@organisers.example")
