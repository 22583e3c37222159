import json
import math

import pytest
import torch

from evospikenet.data.text import byte_tokenizer, load_tokenizer, random_batches
from evospikenet.models import SpikingEvoSpikeNetForCausalLM
from training import evaluate


def test_byte_tokenizer_round_trip():
    tok = byte_tokenizer()
    text = "First Citizen:\nWe are accounted poor citizens, ünïcode ✓"
    ids = tok(text)["input_ids"]
    assert ids[:5] == list(b"First")
    assert len(ids) == len(text.encode("utf-8")) and len(tok) == 257
    assert tok.decode(ids) == text
    assert tok.convert_tokens_to_ids(tok.eos_token) == 256


def test_gpt2_tokenizer_from_data_dir():
    try:
        tok = load_tokenizer("gpt2")
    except FileNotFoundError:
        pytest.skip("data directory not available")
    assert len(tok) == 50257
    assert tok.decode(tok("To be, or not to be")["input_ids"]) == "To be, or not to be"
    with pytest.raises(ValueError, match="kind"):
        load_tokenizer("sentencepiece")


def test_random_batches_shapes_and_errors():
    ids = torch.arange(100)
    b = random_batches(ids, 3, 10, torch.Generator().manual_seed(0))
    assert b.shape == (3, 10) and torch.all(b[:, 1:] - b[:, :-1] == 1)
    with pytest.raises(ValueError, match="length"):
        random_batches(ids, 1, 100)


def test_eval_cli_prints_metrics_json(tmp_path, capsys, tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config())
    model.save_pretrained(tmp_path / "m")
    byte_tokenizer().save_pretrained(tmp_path / "m")
    text = tmp_path / "t.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 2)
    n_bytes = len(text.read_bytes())
    assert evaluate.main(["lm", "--model", str(tmp_path / "m"), "--text", str(text)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res) == {"val_loss", "perplexity", "n_tokens", "spike_rate", "energy_per_token_j"}
    assert res["n_tokens"] == n_bytes - 1  # every token but the first is predicted once
    assert res["perplexity"] == pytest.approx(math.exp(res["val_loss"]))
    assert 0 < res["spike_rate"] < 1 and res["energy_per_token_j"] > 0
    assert res["val_loss"] == pytest.approx(math.log(257), rel=0.1)  # untrained: near uniform
    assert evaluate.main(["lm", "--model", str(tmp_path / "nope"), "--text", str(text)]) == 2


def test_registry_rejects_duplicates():
    assert "lm" in evaluate.EVALUATORS
    with pytest.raises(ValueError, match="already registered"):
        evaluate.register_evaluator("lm", "again", lambda p: None, lambda a: {})
