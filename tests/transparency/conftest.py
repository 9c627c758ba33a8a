"""Live servers for the auditor's tests (the delivery tests' fixture)."""

from tests.delivery.conftest import make_live

__all__ = ["make_live"]
