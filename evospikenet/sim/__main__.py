"""``python -m evospikenet.sim`` (what ``torchrun ... -m evospikenet.sim`` runs): see :mod:`evospikenet.sim.cli`."""

from .cli import main

raise SystemExit(main())
