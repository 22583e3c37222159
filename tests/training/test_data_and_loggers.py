"""DataModules on the real data directory, the data-directory error, and the loggers."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from training.datamodules import DigitsDataModule, SST2DataModule, TinyShakespeareDataModule
from training.ecg import MITBIHDataModule
from training.loggers import OfflineSafeWandbLogger, wandb_should_be_offline
from training.modules import STDPDigitsModule


def test_missing_data_directory_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOSPIKENET_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="EVOSPIKENET_DATA_DIR"):
        TinyShakespeareDataModule().prepare_data()
    monkeypatch.setenv("EVOSPIKENET_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="'sst2' not found"):
        SST2DataModule(source="local").setup("fit")


def test_tiny_shakespeare_windows():
    dm = TinyShakespeareDataModule(tokenizer="byte", seq_len=16, batch_size=4, max_train_windows=12)
    dm.setup("fit")
    assert len(dm.train_set) == 12
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 16) and torch.equal(batch["input_ids"], batch["labels"])
    first = dm.train_set[0]["input_ids"]
    assert dm.tokenizer.decode(first.tolist()) == "First Citizen:\nB"  # the first 16 bytes of the play
    assert len(dm.val_set) == (1_115_394 - int(1_115_394 * 0.9)) // 16  # the last 10 % (ASCII: 1 byte each)


def test_sst2_local_tsvs():
    dm = SST2DataModule(source="local", tokenizer="byte", max_len=24, batch_size=8, max_train_samples=40)
    dm.setup("fit")
    assert len(dm.train_set) == 40 and len(dm.val_set) == 872 and len(dm.predict_set) == 1821
    b = next(iter(dm.val_dataloader()))
    assert b["input_ids"].shape == (8, 24) and set(b["labels"].tolist()) <= {0, 1}
    assert (dm.predict_set.labels == -1).all()  # test.tsv has no labels
    with pytest.raises(ValueError, match="source"):
        SST2DataModule(source="ftp")


def test_digits_split_is_stratified_and_scaled():
    dm = DigitsDataModule(batch_size=64, val_fraction=0.3)
    dm.setup("fit")
    x, y = dm.train_set.tensors
    assert len(dm.train_set) + len(dm.val_set) == 1797 and x.shape[1] == 64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.bincount(dm.val_set.tensors[1]).min() >= 50  # every digit is held out


def test_mitbih_one_record():
    dm = MITBIHDataModule(records=["100"], max_train_beats=50, batch_size=10, downsample=2)
    dm.setup("fit")
    x, rr, y = next(iter(dm.train_dataloader()))
    assert x.shape == (10, 128) and rr.shape == (10, 6) and y.dtype == torch.long
    assert len(dm.train_set) == 50 and len(dm.val_set) > 0 and len(dm.test_set) > 0


def test_wandb_goes_offline_without_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_should_be_offline()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "online")
    assert not wandb_should_be_offline()
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY")
    logger = OfflineSafeWandbLogger(project="t", save_dir=str(tmp_path))
    assert logger._offline


def test_tensorboard_logger_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    pl.seed_everything(0)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        logger=TensorBoardLogger(str(tmp_path), name="tb"),
    )
    trainer.fit(
        STDPDigitsModule(network_config={"n_exc": 10, "time_steps": 3}), DigitsDataModule(batch_size=8)
    )
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_shakespeare_bpe_round_trips_and_is_deterministic():
    from evospikenet.data.text import load_tokenizer

    a, b = load_tokenizer("bpe1024"), load_tokenizer("bpe1024")
    assert len(a) == 1024 and a.eos_token_id == 0
    text = "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    ids = a(text)["input_ids"]
    assert ids == b(text)["input_ids"] and a.decode(ids) == text
    assert len(ids) < len(text) / 2  # words and word pieces, not bytes


def test_sample_text_callback_prints_a_continuation(capsys):
    from training.callbacks import SampleTextCallback
    from training.modules import CausalLMModule

    pl.seed_everything(0)
    cfg = {
        "vocab_size": 257,
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "context_length": 16,
        "time_steps": 2,
    }
    sample = SampleTextCallback(prompt="KING:\n", max_new_tokens=6)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[sample],
    )
    dm = TinyShakespeareDataModule(tokenizer="byte", seq_len=16, batch_size=2, max_train_windows=4)
    trainer.fit(CausalLMModule(model_config=cfg), dm)
    assert sample.sample.startswith("KING:\n") and len(sample.sample) > len("KING:\n")
    assert sample.sample in capsys.readouterr().out
