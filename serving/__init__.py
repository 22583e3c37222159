"""EvoSpikeNet serving: Ray Serve endpoints and the Gradio Insight UI (see docs/serving.md).

Modules, in the direction imports point: ``errors`` (the errors a request ends in), ``security`` (bind and
key rules, Host names, throttling, limits), ``paths`` (``ModelPaths``, no torch), ``schemas`` (pydantic requests and limits), ``engine`` (model
loading with accelerate, generation with insight, classification), ``multimodal``, ``simulate`` (the
plastic E/I network endpoint), ``debug_models``, ``examples``, ``local`` (model sources and the in-process
backend), ``guard`` (the ASGI checks before parsing), ``api`` (FastAPI ingress), ``deployments`` (Ray Serve
deployments, ``build_app``, ``app_builder``), ``ui`` (the Insight UI package, no Ray import), ``cli``
(``evospikenet-serve``), ``demo`` (``run_platform_demo``). Nothing is imported here so that ``serving.ui``
stays usable without Ray.
"""

__all__: list[str] = []
