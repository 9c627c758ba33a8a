"""The audit trail: who did what to which record, and when.

One table and one way to write to it, used by the organiser area, the endorsement life
cycle, privacy and the command line. A row names organisers and records by id only:
never an email address, a token or an anonymous organisation's name.
"""
