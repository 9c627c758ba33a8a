import enum


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker; taken over after the lease runs out
    SENT = "sent"
    FAILED = "failed"  # permanent: the relay refused it (5xx) or too many 4xx
