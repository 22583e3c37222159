"""Request and response models of the serving API (pydantic), with the limits requests are checked against.

A request that breaks a limit gets a 422 whose ``message`` names the field (``text``, ``max_new_tokens``,
``signal``, ``model``, ...); see :mod:`serving.api`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .errors import RequestError

__all__ = [
    "check_simulate_budget",
    "LIMITS",
    "Limits",
    "GenerateRequest",
    "GenerateResponse",
    "InsightRequest",
    "InsightStep",
    "InsightResponse",
    "SentimentRequest",
    "SentimentResponse",
    "ECGRequest",
    "ECGResponse",
    "MultimodalRequest",
    "MultimodalResponse",
    "SimulateRequest",
    "SimulateResponse",
    "HealthResponse",
]


class Limits(BaseModel):
    """Caps on request sizes (a frozen pydantic model so it appears in docs)."""

    model_config = ConfigDict(frozen=True)

    max_text_chars: int = 2000  # longest accepted text (characters)
    max_new_tokens: int = 64  # most tokens one generation request may ask for
    max_insight_tokens: int = 16  # most tokens an insight request may ask for (each step returns plots)
    max_sim_steps: int = 2000  # most simulation steps of the SNN endpoint
    max_sim_neurons: int = 2000  # most neurons (excitatory + inhibitory) of the SNN endpoint
    max_raster_neurons: int = 64  # neurons per population returned in a raster
    # Compute budgets, checked before any work starts (422 naming the field):
    max_sim_neuron_steps: int = 400_000  # (n_exc + n_inh) * steps of one simulation
    max_generate_positions: int = 8192  # token positions one generation processes (no KV cache)


LIMITS = Limits()

Text = Annotated[str, Field(min_length=1, max_length=LIMITS.max_text_chars, description="input text")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ModelName = Annotated[str | None, Field(default=None, max_length=200, description="served model name")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class GenerateRequest(_Request):
    text: Text
    max_new_tokens: int = Field(16, ge=1, le=LIMITS.max_new_tokens, strict=True)
    temperature: float = Field(0.0, ge=0.0, le=5.0, allow_inf_nan=False)  # 0: greedy
    top_k: int = Field(0, ge=0, le=1000, strict=True)  # 0: no top-k filter
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True)
    stream: bool = Field(False, strict=True)  # True: text/event-stream, one token per event
    model: ModelName = None


class GenerateResponse(BaseModel):
    model: str
    text: str
    tokens: list[str]
    energy_per_token_j: list[float]


class InsightRequest(_Request):
    text: Text
    max_new_tokens: int = Field(4, ge=1, le=LIMITS.max_insight_tokens, strict=True)
    model: ModelName = None


class InsightStep(BaseModel):
    token: str  # the token chosen at this step
    energy_j: float  # compute energy of this step's forward pass (whole prefix, no KV cache)
    energy_per_token_j: float  # the same divided by the prefix length
    spike_rate: float  # mean firing rate over every population at this step
    rasters: dict[str, list[list[int]]]  # population -> (T, N<=64) spikes of the newest token
    attention: list[list[float]]  # (L, L) last layer attention averaged over heads


class InsightResponse(BaseModel):
    model: str
    prompt: str
    text: str
    steps: list[InsightStep]


class SentimentRequest(_Request):
    text: Text
    return_spikes: bool = Field(False, strict=True)
    model: ModelName = None


class SentimentResponse(BaseModel):
    model: str
    label: str
    probabilities: dict[str, float]
    spike_rate: float
    energy_per_token_j: float
    input_ids: list[int] | None = None  # the tokens, with return_spikes
    raster: list[list[int]] | None = None  # (T, N<=64) last spiking layer's spikes at the last token
    raster_layer: str | None = None  # which population the raster shows


class ECGRequest(_Request):
    signal: list[FiniteFloat] = Field(..., min_length=1, max_length=4096)  # beat window (mV), model's length
    rr: list[FiniteFloat] | None = Field(None, max_length=64)  # RR features (model's n_rr); None: mean
    return_spikes: bool = Field(False, strict=True)
    model: ModelName = None


class ECGResponse(BaseModel):
    model: str
    label: str
    probabilities: dict[str, float]
    rasters: dict[str, list[list[int]]] | None = None  # layer -> (T, N<=64) spikes


class MultimodalRequest(_Request):
    """A question about an image or an ECG beat (sizes are checked against the served model -> 422)."""

    text: Text  # the question, e.g. "what digit is this ?"
    image: list[FiniteFloat] | None = Field(None, min_length=1, max_length=4096)  # C*S*S pixels row by row
    signal: list[FiniteFloat] | None = Field(None, min_length=1, max_length=4096)  # beat window (mV)
    rr: list[FiniteFloat] | None = Field(None, max_length=64)  # RR features (model's n_rr); None: mean
    max_new_tokens: int | None = Field(None, ge=1, le=LIMITS.max_new_tokens, strict=True)  # None: model's
    return_insight: bool = Field(True, strict=True)  # encoder spikes and cross-modal attention
    model: ModelName = None


class EncoderSpikes(BaseModel):
    raster: list[list[int]]  # (T, N<=64) spikes of the population for the item
    neurons: int  # neurons of the population (the raster shows the first 64)
    rate: float  # mean firing rate over T and every neuron


class MultimodalResponse(BaseModel):
    model: str
    prompt: str
    answer: str
    text_tokens: list[str] | None = None  # prompt + answer tokens (rows of cross_attention)
    prefix_tokens: list[str] | None = None  # "image.0", ... (columns of cross_attention)
    prefix_len: int | None = None  # P: prefix positions before the text
    cross_attention: list[list[float]] | None = None  # (L, P) last layer, mean over heads, text -> prefix
    prefix_mass: list[float] | None = None  # (L,) attention mass each text token puts on the prefix
    encoder_spikes: dict[str, EncoderSpikes] | None = None  # "image.enc0", ... -> spikes
    spike_rate: float | None = None  # mean firing rate of the forward pass
    energy_j: float | None = None  # compute energy of the forward pass over prompt + answer


class SimulateRequest(_Request):
    n_exc: int = Field(80, ge=1, le=1600, strict=True)
    n_inh: int = Field(20, ge=1, le=400, strict=True)
    steps: int = Field(500, ge=1, le=LIMITS.max_sim_steps, strict=True)
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True)
    window: tuple[int, int] | None = None  # [start, stop) steps whose active synapses are highlighted
    snapshot_every: int = Field(100, ge=1, le=LIMITS.max_sim_steps, strict=True)
    graph_neurons: int = Field(30, ge=2, le=200, strict=True)  # excitatory neurons drawn in the graph


def check_simulate_budget(req: SimulateRequest) -> None:
    """A :class:`RequestError` naming ``steps`` when ``(n_exc + n_inh) * steps`` is over
    ``LIMITS.max_sim_neuron_steps`` (each step updates every neuron)."""
    work = (req.n_exc + req.n_inh) * req.steps
    if work > LIMITS.max_sim_neuron_steps:
        most = LIMITS.max_sim_neuron_steps // (req.n_exc + req.n_inh)
        raise RequestError(
            "steps",
            f"{req.n_exc + req.n_inh} neurons x {req.steps} steps = {work} neuron-steps, over this server's "
            f"budget of {LIMITS.max_sim_neuron_steps}; with {req.n_exc + req.n_inh} neurons ask for at most "
            f"{most} steps",
        )


class SimulateResponse(BaseModel):
    steps: int
    dt_s: float
    neurons: dict[str, int]
    spikes: dict[str, list[list[int]]]  # population -> [[t, i], ...] (at most 20000 events)
    rate_hz: dict[str, list[float]]  # population -> rate per 10-step bin
    graph: dict  # {"nodes": [...], "edges": [[pre, post, weight, active], ...], "window": [a, b]}
    weight_hist: dict  # {"bins": [...], "steps": [...], "counts": [[...], ...]} of the ee weights
    energy_j: float


class HealthResponse(BaseModel):
    status: str
    models: dict[str, str]  # endpoint -> model name
    ecg_window: int | None = None  # samples per ECG beat window the ECG model expects
    multimodal: dict | None = None  # input sizes of the multimodal model (image_size, signal_length, ...)
