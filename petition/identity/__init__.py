"""Organisations that prove who they are: control of their website's domain (issue 18)."""
