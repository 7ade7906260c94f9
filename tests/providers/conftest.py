from tests.connectors.scripted_server import server  # noqa: F401  (fixture)
from tests.fakes.llm_servers import fake_anthropic, fake_openai  # noqa: F401  (fixtures)
