"""EvoSpikeNet serving (see README)."""
