from tests.connectors.fakes_fixtures import github, jira  # noqa: F401,E402  (the vendor fakes, issue 17)
from tests.connectors.scripted_server import server  # noqa: F401  (the fixture)
