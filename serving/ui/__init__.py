"""The Insight UI (Gradio) over the HTTP API: Generate, Classify, Network, Multimodal and Simulation run tabs.

``build_ui(base_url)`` talks to a running endpoint only through HTTP (:class:`ApiClient`), so the same
Blocks are mounted at ``/ui`` inside the Ray Serve application and also run alone against any server
(``python -m serving.ui --url http://127.0.0.1:8000``). Modules: ``client`` (HTTP), ``plots`` (figures),
one module per tab (``generate``, ``classify``, ``network``, ``multimodal``, ``sim_run``) and ``app``
(``build_ui``, ``TABS``, ``main``). Gradio's usage analytics are off unless the user turns them on.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported

from .app import TABS, build_ui, main  # noqa: E402
from .client import ApiClient  # noqa: E402

__all__ = ["build_ui", "ApiClient", "TABS", "main"]
