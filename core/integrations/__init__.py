"""Enterprise integrations, the core side: the contracts connectors implement, their loader, the sync.

Core never imports ``connectors``: a connector is found through the entry-point group
``musubi.connectors`` (:mod:`core.integrations.registry`) and used only through the
protocols of :mod:`core.integrations.contracts`.  docs/integrations.md is the user's page.
"""
