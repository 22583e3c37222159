"""Sparse simulation core: CSR connectivity, event-driven propagation, populations, networks."""

from .csr import (
    bytes_per_synapse,
    csr_parts,
    fixed_indegree,
    fixed_probability,
    from_edges,
    make_csr,
    out_degree,
    transpose_csr,
    validate_structure,
)
from .flat import FlatNetwork, SynapseGroup, flatten, run_flat_reference
from .inputs import CurrentInput, PoissonInput
from .monitors import SpikeMonitor, StateMonitor
from .network import BACKENDS, Network, Rule
from .populations import NEURON_KINDS, Population, Projection
from .propagate import event_positions, propagate_events, propagate_spmv

__all__ = [
    "fixed_probability",
    "fixed_indegree",
    "from_edges",
    "make_csr",
    "validate_structure",
    "csr_parts",
    "out_degree",
    "transpose_csr",
    "bytes_per_synapse",
    "propagate_events",
    "propagate_spmv",
    "event_positions",
    "Population",
    "Projection",
    "NEURON_KINDS",
    "PoissonInput",
    "CurrentInput",
    "SpikeMonitor",
    "StateMonitor",
    "Network",
    "Rule",
    "BACKENDS",
    "FlatNetwork",
    "SynapseGroup",
    "flatten",
    "run_flat_reference",
]
