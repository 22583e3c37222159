"""A dispatch mode that records the dtype of every tensor each aten op receives or returns."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class DtypeRecorder(TorchDispatchMode):
    """Records ``(op, dtype)`` for every tensor going into or out of every dispatched op."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in tree_flatten((args, kwargs, out))[0]:
            if isinstance(x, torch.Tensor):
                self.seen.append((str(func), x.dtype))
        return out

    def floating(self) -> set:
        """The ``(op, dtype)`` pairs with a floating-point or complex dtype."""
        return {(op, dt) for op, dt in self.seen if dt.is_floating_point or dt.is_complex}
