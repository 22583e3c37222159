import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from evospikenet.data.multimodal import digit_caption
from evospikenet.models.multimodal import (
    MultiModalEvoSpikeNetConfig,
    MultiModalEvoSpikeNetForCausalLM,
    WordTokenizer,
)


def _batch(model, labels, seed=0):
    rng = np.random.default_rng(seed)
    return model.tokenizer.batch([digit_caption(int(v), rng) for v in labels])


def test_config_validation(tiny_kwargs):
    TINY = tiny_kwargs
    with pytest.raises(ValueError, match="patch_size"):
        MultiModalEvoSpikeNetConfig(**TINY, patch_size=3)
    with pytest.raises(ValueError, match="fusion"):
        MultiModalEvoSpikeNetConfig(**TINY, fusion="cross")
    with pytest.raises(ValueError, match="vocab must start"):
        MultiModalEvoSpikeNetConfig(**TINY, vocab=["a", "b"])
    with pytest.raises(ValueError, match="signal_length"):
        MultiModalEvoSpikeNetForCausalLM(MultiModalEvoSpikeNetConfig(**TINY, signal_length=90))
    c = MultiModalEvoSpikeNetConfig(**TINY)
    assert c.vocab_size == len(c.vocab) and c.n_image_tokens == 4 and c.window == 86


def test_tokenizer_labels_cover_answer_only(tiny_config):
    tok = WordTokenizer(tiny_config.vocab)
    ids, labels = tok.example("what digit is this ?", "the digit seven .")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    k = ids.index(tok.sep_id)
    assert all(v == -100 for v in labels[: k + 1]) and labels[k + 1 :] == ids[k + 1 :]
    assert tok.decode(ids[k + 1 :]) == "the digit seven."
    assert tok.words("zebra") == [tok.unk_id]


def test_vision_encoder_zero_image_gives_bias_current(tiny_model):
    enc = tiny_model.encoders["images"]
    out = enc(torch.zeros(3, 1, 8, 8))  # eval BN with fresh stats: zero current, no spike
    assert all(float(s.detach().sum()) == 0 for s in out.spikes)
    expect = (enc.tok.bias + enc.pos).expand_as(out.current)
    torch.testing.assert_close(out.current, expect)
    assert out.current.shape == (2, 3, 4, 16) and out.aux_logits.shape == (3, 10)


def test_signal_encoder_shapes_and_rr_current(tiny_model):
    enc = tiny_model.encoders["signals"]
    x, rr = torch.zeros(2, 86), torch.zeros(2, 6)
    base = enc(x, rr).current
    assert base.shape == (2, 2, 4, 16)
    rr2 = rr.clone()
    rr2[:, 0] = 1.0
    diff = enc(x, rr2).current - base  # RR enters every token and step as W_rr z
    torch.testing.assert_close(diff, enc.rr.weight[:, 0].expand_as(diff))


def test_forward_causal_and_prefix_reaches_text(tiny_model):
    m = tiny_model
    m.encoders["images"].bn0.weight.data.fill_(
        4.0
    )  # a fresh eval-mode BN barely drives the LIFs: make it fire
    x = torch.rand(2, 1, 8, 8) * 16
    ids, mask, labels = _batch(m, [3, 5])
    out = m(input_ids=ids, attention_mask=mask, images=x, labels=labels, output_attentions=True)
    assert out.logits.shape == (2, ids.shape[1], m.config.vocab_size) and out.prefix_len == 4
    assert torch.isfinite(out.loss)
    assert out.attentions[0].shape == (2, 2, 4 + ids.shape[1], 4 + ids.shape[1])
    ids2 = ids.clone()
    ids2[:, 4:] = 5  # change later tokens: earlier logits unchanged (causal)
    out2 = m(input_ids=ids2, attention_mask=mask, images=x)
    torch.testing.assert_close(out.logits[:, :4], out2.logits[:, :4])
    out3 = m(input_ids=ids, attention_mask=mask, images=x.flip(-1))
    assert not torch.allclose(out.logits[:, :4], out3.logits[:, :4])  # the image reaches the text


def test_aux_loss_adds_only_with_labels(tiny_model):
    m = tiny_model
    x, y = torch.rand(2, 1, 8, 8) * 16, torch.tensor([1, 2])
    ids, mask, labels = _batch(m, [1, 2])
    a = m(input_ids=ids, attention_mask=mask, images=x, labels=labels).loss
    b = m(input_ids=ids, attention_mask=mask, images=x, labels=labels, image_labels=y).loss
    aux = torch.nn.functional.cross_entropy(m.encode(images=x)["images"].aux_logits, y)
    torch.testing.assert_close(b - a, m.config.aux_weight * aux)


def test_save_load_roundtrip_safetensors_and_auto(tiny_model, tmp_path):
    m = tiny_model
    m.set_rr_stats([1.0] * 6, [2.0] * 6)
    m.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "multimodal_evospikenet"
    m2 = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(m2, MultiModalEvoSpikeNetForCausalLM)
    assert m2.config.vocab == m.config.vocab and m2.config.rr_mean == [1.0] * 6
    x, s, rr = torch.rand(2, 1, 8, 8) * 16, torch.randn(2, 86), torch.rand(2, 6)
    ids, mask, _ = _batch(m, [0, 1])
    for kw in ({"images": x}, {"signals": s, "rr": rr}):
        torch.testing.assert_close(
            m(input_ids=ids, attention_mask=mask, **kw).logits,
            m2(input_ids=ids, attention_mask=mask, **kw).logits,
        )
    assert m.generate("describe the image .", images=x) == m2.generate("describe the image .", images=x)


def test_generate_returns_one_answer_per_item(tiny_model):
    m = tiny_model
    ans = m.generate("what digit is this ?", images=torch.rand(3, 1, 8, 8) * 16)
    assert len(ans) == 3 and all(isinstance(a, str) for a in ans)
    ans = m.generate(
        ["what kind of beat is this ?", "describe this heartbeat ."],
        signals=torch.randn(2, 86),
        rr=torch.rand(2, 6),
        max_new_tokens=3,
    )
    assert len(ans) == 2 and all(len(a.split()) <= 3 for a in ans)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"text": "what digit is this ?", "images": torch.rand(2, 1, 16, 16)}, r"\(B, 1, 8, 8\)"),
        ({"text": "what digit is this ?", "images": torch.rand(2, 3, 8, 8)}, "channels"),
        ({"text": "what digit is this ?", "images": torch.rand(8, 8)}, "images must have shape"),
        (
            {"text": "what is this beat ?", "signals": torch.randn(2, 100), "rr": torch.rand(2, 6)},
            r"\(B, 86\)",
        ),
        ({"text": "what is this beat ?", "signals": torch.randn(2, 86)}, "rr must be given"),
        ({"text": "what digit is this ?"}, "refers to images"),
        ({"text": "describe this heartbeat .", "images": torch.rand(1, 1, 8, 8)}, "refers to signals"),
        ({"text": ["a", "b"], "images": torch.rand(3, 1, 8, 8)}, "2 prompts"),
        ({"text": "what digit ?", "images": torch.rand(1, 1, 8, 8), "temperature": 1.0}, "unexpected"),
    ],
)
def test_bad_input_raises_clear_errors(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_model.generate(**kwargs)


def test_learns_to_name_digits(tiny_kwargs):
    """A tiny model trained on four digits answers with the right digit (the whole path learns)."""
    TINY = tiny_kwargs
    from evospikenet.data.multimodal import digits_split

    torch.manual_seed(0)
    m = MultiModalEvoSpikeNetForCausalLM(MultiModalEvoSpikeNetConfig(**{**TINY, "d_model": 32}))
    x, y = digits_split(0)["train"]
    pick = [int(np.flatnonzero(y == d)[0]) for d in (0, 1, 4, 7)]
    x, y = torch.from_numpy(x[pick]), torch.from_numpy(y[pick])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    ids, mask, labels = m.tokenizer.batch([("what digit is this ?", f"the digit {int(v)} .") for v in y])
    m.train()
    for _ in range(120):
        opt.zero_grad()
        m(input_ids=ids, attention_mask=mask, images=x, labels=labels, image_labels=y).loss.backward()
        opt.step()
    ans = m.generate("what digit is this ?", images=x)
    assert ans == [f"the digit {int(v)}." for v in y]
