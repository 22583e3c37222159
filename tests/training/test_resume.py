"""Nothing lost: atomic checkpoint writes and a SIGKILL mid-epoch followed by ``--ckpt_path last``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from trainutil import LM_DEBUG, cli_cmd, run_cli, sub_env

from training.checkpointing import AtomicCheckpointIO, atomic_torch_save
from training.loaders import ResumableDataLoader, make_loader


def test_atomic_save_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"step": 1}, path)

    def torn_save(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise OSError("disk died mid-write")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="mid-write"):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1  # the old complete checkpoint survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left behind


def test_atomic_save_replaces_and_rejects_storage_options(tmp_path):
    path = tmp_path / "a.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.arange(3)}, path)
    io.save_checkpoint({"w": torch.arange(4)}, path)
    assert torch.equal(torch.load(path)["w"], torch.arange(4))
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint({}, path, storage_options={"x": 1})


def test_resumable_loader_skips_done_batches_once():
    ds = torch.utils.data.TensorDataset(torch.arange(20))
    full = [b[0].tolist() for b in make_loader(ds, 4, shuffle=True, seed=3)]
    loader = make_loader(ds, 4, shuffle=True, seed=3)
    assert isinstance(loader, ResumableDataLoader)
    loader.load_state_dict({"batches_done": 2, "epoch": 0})
    assert [b[0].tolist() for b in loader] == full[2:]  # resumes at the third batch
    assert [b[0].tolist() for b in loader] == full  # the next epoch starts from the beginning
    loader.sampler.set_epoch(1)
    assert [b[0].tolist() for b in loader] != full  # a new epoch draws a new order
    loader.batches_done = 3
    assert loader.state_dict() == {"batches_done": 3, "epoch": 1}


def _fit_args(ckpt_dir: Path, export_dir: Path, extra_callbacks: list[dict] | None = None) -> list[str]:
    callbacks = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "dirpath": str(ckpt_dir),
                "every_n_train_steps": 3,
                "save_last": True,
                "save_top_k": -1,
            },
        },
        {
            "class_path": "training.callbacks.SavePretrainedCallback",
            "init_args": {"dirpath": str(export_dir)},
        },
    ] + (extra_callbacks or [])
    return [
        "fit",
        "--config",
        str(LM_DEBUG),
        "--trainer.max_steps=14",
        "--trainer.max_epochs=2",
        "--trainer.limit_val_batches=0",
        "--trainer.val_check_interval=null",
        "--trainer.enable_progress_bar=false",
        "--data.init_args.max_train_windows=80",  # 10 batches of 8 per epoch: step 14 is inside epoch 1
        f"--trainer.callbacks={json.dumps(callbacks)}",
    ]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    ref.mkdir(), crash.mkdir()
    marker = crash / "hang.marker"
    hang = [{"class_path": "helpers.HangAfter", "init_args": {"step": 7, "marker": str(marker)}}]
    # the run that is killed: hangs after step 7 (last checkpoint: step 6, batch 6 of 10 in epoch 0)
    victim = subprocess.Popen(
        cli_cmd(*_fit_args(crash / "ckpt", crash / "export", hang)),
        cwd=crash,
        env=sub_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_cli(_fit_args(ref / "ckpt", ref / "export"), ref)  # uninterrupted reference, meanwhile
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert victim.poll() is None, f"the run ended before the kill:\n{victim.stderr.read()[-4000:]}"
            assert time.monotonic() < deadline, "the run never reached step 7"
            time.sleep(0.2)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    ckpts = sorted(p.name for p in (crash / "ckpt").iterdir())
    assert ckpts == ["epoch=0-step=3.ckpt", "epoch=0-step=6.ckpt", "last.ckpt"], (
        ckpts
    )  # no temporary, no torn file
    for name in ckpts:
        torch.load(crash / "ckpt" / name, weights_only=False)  # every file is complete
    last = torch.load(crash / "ckpt" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 6 and "rng_states" in last
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"batches_done": 6, "epoch": 0}]
    assert not (crash / "export").exists()

    run_cli(_fit_args(crash / "ckpt", crash / "export") + ["--ckpt_path", "last"], crash)
    a, b = load_file(ref / "export" / "model.safetensors"), load_file(crash / "export" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=f"weight {k} differs after resume")
    assert (crash / "ckpt" / "epoch=1-step=12.ckpt").exists()  # the resumed run crossed into epoch 1
