"""``python -m core.engine``: run the engine in the foreground."""

from core.engine.daemon import main

raise SystemExit(main())
