"""SpikingEvoSpikeNetLM: spiking Transformer LM with TAS-Encoding and ChronoSpikeAttention."""

from .attention import ChronoAttnParams, chrono_spike_attention, temporal_kernel
from .block import LayerStats, MetaSTDP, SpikingBlock, stdp_fast_weight_readout
from .config import MODEL_TYPE, NEURON_BACKENDS, SpikingEvoSpikeNetConfig
from .model import (
    SpikeStats,
    SpikingEvoSpikeNetForCausalLM,
    SpikingEvoSpikeNetForSequenceClassification,
    SpikingEvoSpikeNetModel,
    SpikingEvoSpikeNetPreTrainedModel,
    SpikingLMOutput,
)
from .neurons import LIFPopulation
from .packing import pack_sequences
from .tas import TASEncoder, TASParams, tas_encode, tas_probability

__all__ = [
    "MODEL_TYPE",
    "NEURON_BACKENDS",
    "SpikingEvoSpikeNetConfig",
    "SpikingEvoSpikeNetPreTrainedModel",
    "SpikingEvoSpikeNetModel",
    "SpikingEvoSpikeNetForCausalLM",
    "SpikingEvoSpikeNetForSequenceClassification",
    "SpikingLMOutput",
    "SpikeStats",
    "LayerStats",
    "SpikingBlock",
    "MetaSTDP",
    "stdp_fast_weight_readout",
    "LIFPopulation",
    "TASEncoder",
    "TASParams",
    "tas_encode",
    "tas_probability",
    "ChronoAttnParams",
    "chrono_spike_attention",
    "temporal_kernel",
    "pack_sequences",
]
