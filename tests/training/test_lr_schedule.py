"""The learning-rate schedule of the Hugging Face model modules: warm-up, then constant or cosine."""

import math

import pytest
import torch

from training.modules import CausalLMModule, lr_factor


def test_lr_factor_closed_form():
    assert lr_factor(0, warmup=4, total=0) == pytest.approx(0.25)
    assert lr_factor(10, warmup=4, total=0) == 1.0  # constant after the warm-up
    assert lr_factor(0, warmup=0, total=100) == 1.0
    assert lr_factor(50, warmup=0, total=100) == pytest.approx(0.5)
    assert lr_factor(25, warmup=10, total=100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(100, warmup=10, total=100) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(150, warmup=10, total=100) == pytest.approx(0.0, abs=1e-12)  # stays at 0 past the end


def test_cosine_schedule_reaches_zero_at_the_last_step(tmp_path):
    import lightning.pytorch as pl

    cfg = {
        "vocab_size": 257,
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "context_length": 8,
        "time_steps": 2,
    }
    module = CausalLMModule(model_config=cfg, lr=0.01, warmup_steps=2, lr_schedule="cosine")
    data = [{"input_ids": torch.randint(0, 257, (2, 8)), "labels": torch.randint(0, 257, (2, 8))}] * 6
    loader = torch.utils.data.DataLoader(data, batch_size=None)
    lrs = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, *_):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = pl.Trainer(max_steps=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[Record()], default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, loader)
    want = [0.01 * lr_factor(s, 2, 6) for s in range(6)]
    assert lrs == pytest.approx(want)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        CausalLMModule(model_config={"d_model": 16, "n_heads": 2}, lr_schedule="linear")
