"""``python -m serving.ui --url http://127.0.0.1:8000``: the Insight UI alone against a running API."""

from .app import main

raise SystemExit(main())
