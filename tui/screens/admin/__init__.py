"""Admin mode (6): tenants, members & roles, quotas, audit — one pane module each."""
