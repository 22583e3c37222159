"""Where the project's data sets live.

Resolution order, everywhere in the project:

1. an explicit ``data_dir`` argument;
2. the ``EVOSPIKENET_DATA_DIR`` environment variable;
3. ``../shared/data`` beside the repository (the layout of the development machines and CI);
4. otherwise a ``FileNotFoundError`` that says how to get the data.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "resolve_data_dir", "dataset_path"]

ENV_VAR = "EVOSPIKENET_DATA_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[2]

_HOW_TO = (
    "Set EVOSPIKENET_DATA_DIR to a directory holding the data sets (mitdb/, sst2/, tinyshakespeare/, "
    "tokenizers/gpt2/), pass data_dir=..., or use the online loaders (wfdb.dl_database('mitdb', ...), "
    "datasets.load_dataset('glue', 'sst2')) where the machine has internet."
)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data directory, or raise ``FileNotFoundError`` explaining how to provide one."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data_dir {str(path)!r} is not a directory. {_HOW_TO}")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_VAR}={env!r} is not a directory. {_HOW_TO}")
        return path
    beside = _REPO_ROOT.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    raise FileNotFoundError(
        f"No data directory found ({ENV_VAR} is unset and {beside} does not exist). {_HOW_TO}"
    )


def dataset_path(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of one data set (e.g. ``"mitdb"``) inside the data directory; raises if it is missing."""
    root = resolve_data_dir(data_dir)
    path = root / name
    if not path.exists():
        raise FileNotFoundError(f"data set {name!r} not found in data directory {str(root)!r}. {_HOW_TO}")
    return path
