"""EvoSpikeNet serving: Ray Serve endpoints and the Gradio Insight UI (see docs/serving.md).

Modules: ``schemas`` (pydantic requests and limits), ``engine`` (model loading with accelerate, generation
with insight, classification), ``simulate`` (the plastic E/I network endpoint), ``api`` (FastAPI ingress),
``local`` (in-process backend), ``deployments`` (Ray Serve deployments, ``build_app``, ``app_builder``),
``ui`` (``build_ui``, no Ray import), ``cli`` (``evospikenet-serve``), ``demo`` (``run_platform_demo``).
Nothing is imported here so that ``serving.ui`` stays usable without Ray.
"""

__all__: list[str] = []
