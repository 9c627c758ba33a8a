"""The domain proofs' table: defined with the endorsements it belongs to (the purge deletes both)."""

from petition.endorsements.tables import domain_proofs

__all__ = ["domain_proofs"]
