from tests.connectors.scripted_server import server  # noqa: F401  (the fixture)
