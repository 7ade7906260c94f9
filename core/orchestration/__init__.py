"""Orchestration: spec-driven agent workflows run by the engine against real LLM APIs.

``contracts`` holds the shapes the parts agree on (provider protocol, agent and
step specs, the step context a pattern runs against).  Providers live in
``connectors/`` and are found through the ``musubi.providers`` entry points;
core never imports connectors.
"""
