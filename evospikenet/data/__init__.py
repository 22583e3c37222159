"""Plain torch data sets and loaders (no Lightning here)."""

from .paths import ENV_VAR, dataset_path, resolve_data_dir

__all__ = ["ENV_VAR", "resolve_data_dir", "dataset_path"]
