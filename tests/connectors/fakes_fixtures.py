"""Fixtures starting the vendor fakes (tests/fakes) and connectors pointed at them, with no real waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.github import GitHubConnector
from connectors.http import RetryPolicy
from connectors.jira import JiraConnector
from tests.fakes.github import GitHubFake
from tests.fakes.jira import JiraFake

SLEPT: list[float] = []


def fast_policy(**kw: object) -> RetryPolicy:
    """The connector's policy shape with tiny waits, so retry tests never sleep for real."""
    base = {"base_s": 0.001, "max_delay_s": 5.0, "max_total_wait_s": 10.0}
    base.update(kw)
    return RetryPolicy(**base)  # type: ignore[arg-type]


@pytest.fixture
async def jira() -> AsyncIterator[JiraFake]:
    async with JiraFake() as fake:
        yield fake


@pytest.fixture
async def github() -> AsyncIterator[GitHubFake]:
    async with GitHubFake() as fake:
        yield fake


def jira_connector(fake: JiraFake, **settings: object) -> JiraConnector:
    from connectors.http import jira_rate_limit_reset

    conf = {"url": fake.url, "email": fake.email, **settings}
    return JiraConnector(conf, {"token": fake.token}, policy=fast_policy(reset_hooks=(jira_rate_limit_reset,)),
                         timeout_s=2.0)


SPEC = """# Auth

## REQ-AUTH-001: Login with password

WHEN a user submits valid credentials THEN the system SHALL start a session.

**Acceptance Criteria**:
- a session cookie is set
- the login is audited

## REQ-AUTH-002: Logout

WHEN a user logs out THEN the system SHALL end the session.
"""
TASKS = """# Auth tasks

- [ ] TASK-AUTH-001: Login endpoint
  - Serves REQ-AUTH-001
- [x] TASK-AUTH-002: Logout endpoint (REQ-AUTH-002)
"""


def spec_repo(root: Path) -> Path:
    (root / "storage" / "specs").mkdir(parents=True)
    (root / "storage" / "tasks").mkdir(parents=True)
    (root / "storage" / "specs" / "auth.md").write_text(SPEC)
    (root / "storage" / "tasks" / "auth-tasks.md").write_text(TASKS)
    return root


def github_connector(fake: GitHubFake, **settings: object) -> GitHubConnector:
    from connectors.github import is_rate_limit
    from connectors.http import github_rate_limit_reset

    conf = {"api_url": fake.url, "repo": fake.repo, **settings}
    return GitHubConnector(conf, {"token": fake.token}, timeout_s=2.0,
                           policy=fast_policy(reset_hooks=(github_rate_limit_reset,), rate_limit_hint=is_rate_limit))
