"""Orchestration: spec-driven agent workflows run by the engine against real LLM APIs.

``contracts`` holds the shapes the parts agree on (provider protocol, agent and
step specs, the step context a pattern runs against).  Providers live in
``connectors/`` and are found through the ``musubi.providers`` entry points;
core never imports connectors.

The run engine (docs/runs.md): ``service`` (``RunService``, ``engine.runs``: runs as jobs of kind
``run``, reads), ``ops`` (start, cancel, resume, decide, apply), ``runloop`` (one attempt of a
run), ``context`` (the durable ``StepContext``), ``calls`` (one charged-once model call),
``records`` (the rows of migration 006), ``catalog`` (where a run finds its workflow),
``stuck``, ``gitapply``, and ``testkit`` (the ``MUSUBI_TEST_RUNS`` test hook).
"""
