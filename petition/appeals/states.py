import enum


class AppealStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


class Moderation(enum.StrEnum):
    PRE = "pre"  # listed after an organiser approves
    POST = "post"  # listed on confirmation; organisers may still reject
