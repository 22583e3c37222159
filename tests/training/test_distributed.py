"""DDP for real over gloo with 2 CPU processes, and the multi-node ``num_nodes`` path on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest
from trainutil import LM_DEBUG, cli_cmd, run_cli, sub_env

_ARGS = [
    "fit",
    "--config",
    str(LM_DEBUG),
    "--trainer.strategy=ddp",
    "--trainer.accelerator=cpu",
    "--trainer.max_steps=3",
    "--trainer.val_check_interval=null",
    "--trainer.limit_val_batches=0",
    "--trainer.enable_progress_bar=false",
    '--trainer.callbacks=[{"class_path": "helpers.DumpWeights", "init_args": {"dirpath": "weights"}}]',
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ranks(cwd) -> list[dict]:
    return [json.loads((cwd / "weights" / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_ddp_two_cpu_processes_over_gloo(tmp_path):
    p = run_cli([*_ARGS, "--trainer.devices=2"], tmp_path, timeout=400, MASTER_PORT=str(_free_port()))
    r0, r1 = _ranks(tmp_path)
    assert r0["world_size"] == r1["world_size"] == 2 and r0["backend"] == "gloo"
    assert r0["global_step"] == r1["global_step"] == 3
    assert r0["digest"] == r1["digest"]  # all-reduced gradients keep the replicas identical
    assert "Starting with 2 processes" in p.stdout + p.stderr


@pytest.mark.slow
def test_multi_node_path_with_torch_distributed_env(tmp_path):
    port = str(_free_port())
    procs = []
    for node in (0, 1):
        env = sub_env(
            MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE="2", NODE_RANK=str(node), LOCAL_RANK="0"
        )
        args = [*_ARGS, "--trainer.num_nodes=2", "--trainer.devices=1"]
        procs.append(
            subprocess.Popen(
                cli_cmd(*args),
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=400)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    r0, r1 = _ranks(tmp_path)
    assert (r0["node_rank"], r1["node_rank"]) == (0, 1) and r0["num_nodes"] == 2
    assert r0["world_size"] == 2 and r0["digest"] == r1["digest"]
