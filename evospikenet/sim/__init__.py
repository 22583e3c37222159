"""Population-network simulation at brain scale: PD14 and other ``iaf_psc_exp`` networks.

``spec`` describes a network as plain data, ``pd14`` derives the Potjans & Diesmann microcircuit from its
published description.
"""

from __future__ import annotations

from .pd14 import PD14Config, pd14_spec
from .spec import Generator, NetworkSpec, Population

__all__ = ["NetworkSpec", "Population", "Generator", "PD14Config", "pd14_spec"]
