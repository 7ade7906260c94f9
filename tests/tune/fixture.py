"""A small git repository for pair mining: a spec, accepted/rejected trace links, docstrings, commit history."""

from __future__ import annotations

from pathlib import Path

from tests.index.helpers import git, write

SPEC = """
# Authentication requirements

## REQ-AUTH-001: Password login

WHEN a user submits a valid email and password, the Auth Service SHALL issue a session token.

## REQ-AUTH-002: Logout

The Auth Service SHALL revoke the session token when the user logs out.
"""

AUTH_V1 = '''
def login(email, password):
    """Check the password and issue a session token for the user."""
    user = find_user(email)
    return issue_token(user) if user.check(password) else None


def logout(token):
    """Revoke the session token so that no endpoint accepts it again."""
    revoke(token)
    return True
'''

AUTH_V2 = AUTH_V1.replace("    revoke(token)\n", "    revoke(token)\n    audit(\"logout\")\n")

BILLING = '''
class Invoice:
    def total(self):
        """Sum the amounts of every line of the invoice."""
        return sum(line.amount for line in self.lines)

    def short(self):
        """Too short."""
        return 1
'''

LINKS = """
version: 1
links:
  - requirement: REQ-AUTH-001
    kind: code
    target: src/auth.py
    line: 3
    source: manual
    state: accepted
  - requirement: REQ-AUTH-002
    kind: code
    target: src/auth.py
    source: suggested
    state: rejected
  - requirement: REQ-AUTH-002
    kind: test
    target: tests/test_auth.py
    source: manual
    state: accepted
"""

TEST_AUTH = '''
def test_logout_revokes_the_token():
    token = login("a@example.com", "pw")
    assert logout(token)
'''


def make(base: Path) -> Path:
    """The repository, with four commits (one a noise 'wip', one touching a single function)."""
    repo = base / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "storage/specs/auth.md", SPEC)
    write(repo, "src/auth.py", AUTH_V1)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add password login and logout")
    write(repo, "src/billing.py", BILLING)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "wip")
    write(repo, "src/auth.py", AUTH_V2)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Audit every logout of a session")
    write(repo, "tests/test_auth.py", TEST_AUTH)
    write(repo, "storage/traceability/links.yml", LINKS)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Test that logout revokes the token")
    return repo
