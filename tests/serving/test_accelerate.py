"""Loading through accelerate (init_empty_weights + load_checkpoint_and_dispatch) matches a plain load."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM
from serving.engine import load_causal_lm, load_classifier


def _plain(path: str):
    model = SpikingEvoSpikeNetForCausalLM(SpikingEvoSpikeNetConfig.from_pretrained(path))
    missing, unexpected = model.load_state_dict(load_file(f"{path}/model.safetensors"), strict=False)
    assert not unexpected
    return model.eval()


@pytest.mark.parametrize("device_map", [{"": "cpu"}, "auto"])
def test_dispatched_lm_matches_plain_load(debug_paths, device_map):
    model, tok = load_causal_lm(debug_paths.lm, device_map)
    assert all(p.device.type == "cpu" and not p.is_meta for p in model.parameters())
    ref = _plain(debug_paths.lm)
    ids = torch.tensor([list(b"spikes")])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, ref(input_ids=ids).logits)
    assert tok.decode(tok("abc", add_special_tokens=False)["input_ids"]) == "abc"


def test_auto_device_map_never_splits_a_block(debug_paths):
    from accelerate import infer_auto_device_map, init_empty_weights

    cfg = SpikingEvoSpikeNetConfig.from_pretrained(debug_paths.lm)
    with init_empty_weights():
        model = SpikingEvoSpikeNetForCausalLM(cfg)
    block_bytes = sum(p.numel() * 4 for p in model.spiking.blocks[0].parameters())
    dm = infer_auto_device_map(
        model, max_memory={0: int(1.5 * block_bytes), 1: int(1.5 * block_bytes), "cpu": 10**9},
        no_split_module_classes=["SpikingBlock"],
    )  # fmt: skip
    assert len(set(dm.values())) >= 2  # the replica spans several devices
    for key in dm:
        parts = key.split(".")
        if parts[:2] == ["spiking", "blocks"]:
            assert len(parts) <= 3, f"block split across devices: {key}"


def test_classifier_labels(debug_paths):
    model, _tok, labels = load_classifier(debug_paths.sentiment, {"": "cpu"})
    assert labels == ["negative", "positive"] and model.config.num_labels == 2


def test_checkpoint_missing_a_weight_keeps_its_init(debug_paths, tmp_path):
    """A checkpoint without ``lm_head.bias`` still loads: the rest from the file, the bias from init."""
    import shutil

    from safetensors.torch import save_file

    old = tmp_path / "old"
    shutil.copytree(debug_paths.lm, old)
    sd = load_file(f"{old}/model.safetensors")
    del sd["lm_head.bias"]
    save_file(sd, f"{old}/model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match="lm_head.bias"):
        model, _ = load_causal_lm(str(old), {"": "cpu"})
    assert not any(p.is_meta for p in model.parameters())
    assert torch.equal(model.lm_head.weight, sd["lm_head.weight"])
    assert torch.count_nonzero(model.lm_head.bias) == 0  # the model's own init: zeros
