"""Models, exact token counts, the pre-run cost estimator and the router (pure core code).

- :mod:`core.models.registry`: the shipped model data plus config overrides.
- :mod:`core.models.tokens`: exact o200k/cl100k counts offline, estimates elsewhere.
- :mod:`core.models.pricing`: micro-dollar arithmetic.
- :mod:`core.models.history`: expected output from the usage ledger.
- :mod:`core.models.estimate`: the per-model estimate of a run.
- :mod:`core.models.router`: which model a task should use, and why.
- :mod:`core.models.importer`: a LiteLLM-format price table mapped onto the registry, as a diff.
- :mod:`core.models.overrides`: the stored overrides those imports write (owner's and tenants').

Nothing here imports the engine, textual or a network client; the engine serves
it through ``core/engine/routes_models.py``.
"""
