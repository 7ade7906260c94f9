"""``musubi serve``: the workstation for SSH clients (``ssh.py``) and browsers (``web.py``).

Each connection gets its own TUI process (``python -m tui.remote``) acting as the musubi
user the server established (a public key, a token or a SAML sign-in), through a session
token the engine mints for it (``engine_link.py``, docs/remote.md).  Nothing here trusts a
client's claim about who it is.
"""
