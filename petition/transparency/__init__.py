"""The public log: an append-only Merkle tree of listings and withdrawals (RFC 9162 hashing),
signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note), and the proofs that tie
an entry or an older checkpoint to a newer one."""
