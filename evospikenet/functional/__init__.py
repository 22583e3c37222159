"""Pure step functions ``(x, state, params) -> (out, new_state)`` with NamedTuple state and params."""

from .integer_lif import (
    IntLIFParams,
    IntLIFState,
    LoihiLIFParams,
    LoihiLIFState,
    int_lif_init_state,
    int_lif_params,
    int_lif_step,
    loihi_lif_init_state,
    loihi_lif_params,
    loihi_lif_step,
)
from .lif import LIFParams, LIFState, lif_init_state, lif_multistep, lif_params, lif_step
from .surrogate import (
    SURROGATES,
    ATan,
    FastSigmoid,
    Sigmoid,
    StraightThrough,
    Surrogate,
    Triangle,
    get_surrogate,
)

__all__ = [
    "LIFParams",
    "LIFState",
    "lif_params",
    "lif_init_state",
    "lif_step",
    "lif_multistep",
    "IntLIFParams",
    "IntLIFState",
    "int_lif_init_state",
    "int_lif_params",
    "int_lif_step",
    "LoihiLIFParams",
    "LoihiLIFState",
    "loihi_lif_init_state",
    "loihi_lif_params",
    "loihi_lif_step",
    "Surrogate",
    "SURROGATES",
    "get_surrogate",
    "FastSigmoid",
    "Sigmoid",
    "ATan",
    "Triangle",
    "StraightThrough",
]
