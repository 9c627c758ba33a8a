"""Organiser roles: admins can do everything moderators can, and more."""

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"  # manages organisers and appeals, downloads the private export
    MODERATOR = "moderator"  # moderates endorsements


def has_role(actual: str, required: Role) -> bool:
    if required == Role.MODERATOR:
        return actual in (Role.MODERATOR.value, Role.ADMIN.value)
    return actual == Role.ADMIN.value
