"""EvoSpikeNet hub (see README)."""
