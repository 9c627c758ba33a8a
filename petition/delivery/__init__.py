"""Delivering each country's signed dossier to its parliamentarians (docs/delivery.md)."""
