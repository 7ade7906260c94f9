"""LLM chat providers, found by the engine through the ``musubi.providers`` entry points.

``openai``, ``azure-openai``, ``anthropic``, ``openai-compatible`` (Ollama, vLLM, LM
Studio) and ``replay`` (recorded responses, not a model).  Each entry point is a factory
``(ProviderSettings) -> ChatProvider`` (core/orchestration/contracts.py).
"""
