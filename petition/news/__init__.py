"""News for endorsers: updates organisers send to the organisations that asked for them, and the
one-click unsubscribe (RFC 8058) that stops them."""
