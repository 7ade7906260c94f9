from tests.fakes.llm_servers import fake_anthropic, fake_openai  # noqa: F401  (fixtures)
