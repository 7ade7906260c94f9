"""Traceability: requirement → design → task → code → test links, coverage, gaps, impact, EARS lint.

Modules: ``ids`` (ID patterns, whole-token matching), ``config`` (``musubi.toml``
``[trace]``), ``files`` (listing and safe reading), ``specs`` (Markdown spec
parsing), ``lexer`` (IDs in comments, docstrings and test names), ``scanner``
(incremental scan with a per-file cache), ``links`` (``links.yml``), ``matrix``
(the matrix, coverage, gaps, impact, suspect links), ``lint`` (EARS rules),
``export`` (json/csv/md/html) and ``service`` (what the engine serves).
See docs/trace.md.
"""
