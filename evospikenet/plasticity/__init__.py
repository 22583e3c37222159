"""Plasticity ("dynamic graph evolution"): rules that change a ``Network`` while it runs.

Each rule is a pure step function on tensors plus a thin class implementing the core's ``Rule`` protocol
(``bind``, ``before_step``, ``after_step``):

* ``stdp`` / ``int_stdp``: pair-based STDP with traces on the stored CSR entries (float / int8 path);
* ``homeostasis``: adaptive thresholds holding each neuron's rate near a target (float and integer);
* ``structural``: buffered synapse creation/removal, applied in one CSR rebuild every N steps;
* ``meta``: MetaSTDP, STDP's ``tau+`` driven by reward against a running baseline;
* ``aeg``: per-neuron energy budgets that gate neurons out of energy, with a ledger;
* ``synchrony``: EntangledSynchronyLayer, Kuramoto phase coupling of a LIF group.

``RULES`` maps a short name to each rule class, e.g. ``RULES["stdp"]("rec", a_plus=0.01)``.
"""

from . import homeostasis as _homeostasis
from ._common import CSRIndex, csr_index
from .aeg import AEG, AEGParams, AEGState, aeg_gate, aeg_init_state, aeg_params, aeg_step
from .homeostasis import *  # noqa: F403  (its __all__, re-exported below)
from .homeostasis import Homeostasis
from .int_stdp import (
    IntSTDPParams,
    IntSTDPState,
    int_stdp_error_bound,
    int_stdp_init_state,
    int_stdp_params,
    int_stdp_step,
)
from .meta import MetaParams, MetaState, MetaSTDP, meta_init_state, meta_params, meta_step
from .stdp import STDP, STDPParams, STDPState, stdp_init_state, stdp_params, stdp_step
from .structural import EditBuffer, ResolvedEdits, StructuralPlasticity, apply_edits, remap_entries
from .synchrony import (
    EntangledSynchronyLayer,
    SynchronyParams,
    SynchronyRule,
    draw_frequencies,
    kuramoto_step,
    order_parameter,
    phase_drive,
    spike_synchrony,
    synchrony_params,
)

RULES = {
    "stdp": STDP,
    "homeostasis": Homeostasis,
    "structural": StructuralPlasticity,
    "meta_stdp": MetaSTDP,
    "aeg": AEG,
    "synchrony": SynchronyRule,
}  # name -> rule class (each implements bind / before_step / after_step)

__all__ = [
    "RULES",
    # stdp
    "STDP",
    "CSRIndex",
    "csr_index",
    "STDPParams",
    "STDPState",
    "stdp_params",
    "stdp_init_state",
    "stdp_step",
    "IntSTDPParams",
    "IntSTDPState",
    "int_stdp_params",
    "int_stdp_init_state",
    "int_stdp_step",
    "int_stdp_error_bound",
    # structural
    "StructuralPlasticity",
    "EditBuffer",
    "ResolvedEdits",
    "apply_edits",
    "remap_entries",
    # meta
    "MetaSTDP",
    "MetaParams",
    "MetaState",
    "meta_params",
    "meta_init_state",
    "meta_step",
    # aeg
    "AEG",
    "AEGParams",
    "AEGState",
    "aeg_params",
    "aeg_init_state",
    "aeg_gate",
    "aeg_step",
    # synchrony
    "EntangledSynchronyLayer",
    "SynchronyRule",
    "SynchronyParams",
    "synchrony_params",
    "draw_frequencies",
    "kuramoto_step",
    "phase_drive",
    "order_parameter",
    "spike_synchrony",
]
__all__ += _homeostasis.__all__  # Homeostasis and its float and integer step functions
