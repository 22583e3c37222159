"""Training and evaluation entry points (``evospikenet-eval``; the Lightning platform lives beside it)."""

__all__: list[str] = []
