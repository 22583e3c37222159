"""Example inputs for the demo and the UI (no Gradio import)."""

from __future__ import annotations

import math

__all__ = ["example_beat"]


def example_beat(n: int, kind: str = "normal") -> list[float]:
    """A synthetic beat window of ``n`` samples (mV): P wave, QRS complex at 35 %, T wave.

    ``kind`` "normal" has a narrow QRS (Gaussian width 2 % of the window); any other kind a wide one (6 %).
    """
    c = 0.35 * n
    qrs_w = 0.02 * n if kind == "normal" else 0.06 * n

    def g(mu, sd, a):
        return [a * math.exp(-0.5 * ((i - mu) / sd) ** 2) for i in range(n)]

    parts = [g(c - 0.15 * n, 0.03 * n, 0.15), g(c, qrs_w, 1.2), g(c + 0.3 * n, 0.06 * n, 0.3)]
    return [round(sum(v), 5) for v in zip(*parts)]
