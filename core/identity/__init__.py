"""Identity beyond the socket peer: engine-minted session tokens for remote sessions (``sessions.py``)."""
