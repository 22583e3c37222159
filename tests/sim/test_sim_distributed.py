"""One network across processes under torchrun: identical spikes on 1, 2 and 3 ranks, checkpoints that
resume to the same spikes, a clear stop when a rank dies, and two "nodes" meeting on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from simutil import REPO, run_sim, sim_cmd, sim_env

from evospikenet.sim.recording import load_spikes

SMALL = ["--scale", "0.02", "--drive", "poisson", "--t-presim", "0", "--no-progress"]


def _spikes(run_dir):
    return load_spikes(run_dir)


def _same(a, b) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory, popnet):
    out = tmp_path_factory.mktemp("r1")
    res = json.loads(
        run_sim(
            "pd14", *SMALL, "--t-sim", "300", "--record", "--deterministic", "--out", str(out)
        ).stdout.splitlines()[-1]
    )
    return out, res


def _regions() -> set:
    return set(Path("/dev/shm").glob("evospikenet-spikes-*")) if Path("/dev/shm").is_dir() else set()


@pytest.mark.parametrize(
    "ranks,exchange", [(2, "shared"), (3, "shared"), (2, "gloo"), (3, "gloo"), (2, "python")]
)
def test_deterministic_runs_are_identical_on_any_number_of_ranks(tmp_path, one_rank, ranks, exchange):
    """Every exchange path (shared memory, the C++ loop over gloo, Python collectives) gives the 1-rank
    spikes, and the shared region leaves no file behind."""
    out = tmp_path / f"r{ranks}"
    before = _regions()
    p = run_sim(
        "pd14", *SMALL, "--t-sim", "300", "--record", "--deterministic", "--out", str(out), ranks=ranks,
        env={"EVOSPIKENET_EXCHANGE": exchange},
    )  # fmt: skip
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["ranks"] == ranks and res["n_synapses"] == one_rank[1]["n_synapses"]
    assert res["synaptic_events"] == one_rank[1]["synaptic_events"]
    assert len(list((out / "spikes").glob("rank*.bin"))) == ranks
    assert _same(_spikes(one_rank[0]), _spikes(out))
    assert _regions() <= before


def test_unknown_exchange_is_named(tmp_path, popnet):
    p = run_sim("pd14", *SMALL, "--t-sim", "10", "--out", str(tmp_path / "x"), ranks=2, check=False,
                env={"EVOSPIKENET_EXCHANGE": "carrier-pigeon"})  # fmt: skip
    assert p.returncode != 0 and "EVOSPIKENET_EXCHANGE must be shared, gloo or python" in p.stderr


def test_fast_mode_matches_statistically(tmp_path, one_rank):
    p = run_sim("pd14", *SMALL, "--t-sim", "300", "--out", str(tmp_path / "f"), ranks=2)
    fast, ref = json.loads(p.stdout.strip().splitlines()[-1]), one_rank[1]
    total = sum(ref["rates_hz"].values())
    assert abs(sum(fast["rates_hz"].values()) - total) < 0.1 * total


def _wait_for(predicate, timeout: float, proc=None) -> None:
    end = time.time() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended first: {proc.communicate()[1][-3000:]}")
        if time.time() > end:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.mark.parametrize("ranks", [1, 2])
def test_resume_after_a_kill_gives_the_uninterrupted_spikes(tmp_path, popnet, ranks):
    args = [*SMALL, "--t-sim", "1500", "--record", "--deterministic", "--checkpoint-every", "250"]
    whole = tmp_path / "whole"
    run_sim("pd14", *args, "--out", str(whole), ranks=ranks)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        sim_cmd("pd14", *args, "--out", str(cut), ranks=ranks), env=sim_env(), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _wait_for(lambda: any(cut.glob("checkpoint/step*/meta.json")), 300, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every rank, mid-run
    proc.communicate()
    p = run_sim("pd14", "--resume", str(cut), "--no-progress", ranks=ranks)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["resumed_from_step"] is not None and res["resumed_from_step"] % 2500 == 0
    assert _same(_spikes(whole), _spikes(cut))


@pytest.mark.slow
def test_a_dead_rank_stops_the_run_with_an_error(tmp_path, popnet):
    out = tmp_path / "dead"
    proc = subprocess.Popen(
        sim_cmd("pd14", *SMALL, "--t-sim", "600000", "--out", str(out), ranks=2), env=sim_env(), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        launcher = psutil.Process(proc.pid)

        def workers():
            return [
                c for c in launcher.children(recursive=True) if "evospikenet.sim" in " ".join(c.cmdline())
            ]

        _wait_for(lambda: len(workers()) == 2 and (out / "run.json").exists(), 300, proc)
        time.sleep(3)  # both ranks are stepping now
        victim = next(w for w in workers() if w.environ().get("RANK") == "1")
        killed = time.time()
        victim.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=90)
        took = time.time() - killed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert took < 60, f"the run took {took:.0f} s to stop after a rank died"
    assert "failed" in err.lower() or "exchange" in err.lower(), err[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_meet_on_loopback(tmp_path, one_rank):
    """torchrun's c10d rendezvous joins two launchers ("nodes") into one 2-rank run."""
    port, out = _free_port(), tmp_path / "nodes"
    torchrun = sim_cmd("x", ranks=2)[0]
    env = {**sim_env(), "GLOO_SOCKET_IFNAME": "lo"}
    nodes = [
        subprocess.Popen(
            [
                torchrun,
                "--nnodes=2",
                "--nproc-per-node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}",
                "--rdzv-id=evospikenet-test",
                "-m",
                "evospikenet.sim",
                "pd14",
                *SMALL,
                "--t-sim",
                "300",
                "--record",
                "--deterministic",
                "--out",
                str(out),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [n.communicate(timeout=600) for n in nodes]
    assert all(n.returncode == 0 for n in nodes), outs[0][1][-3000:] + outs[1][1][-3000:]
    assert _same(_spikes(one_rank[0]), _spikes(out))
