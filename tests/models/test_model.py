import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    pipeline,
)

from evospikenet.data.text import byte_tokenizer
from evospikenet.energy import HOROWITZ_45NM
from evospikenet.models import (
    SpikingEvoSpikeNetConfig,
    SpikingEvoSpikeNetForCausalLM,
    SpikingEvoSpikeNetForSequenceClassification,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_backends_give_identical_logits(tiny_config):
    torch.manual_seed(0)
    a = SpikingEvoSpikeNetForCausalLM(tiny_config(neuron_backend="snntorch")).eval()
    b = SpikingEvoSpikeNetForCausalLM(tiny_config(neuron_backend="evospikenet")).eval()
    b.load_state_dict(a.state_dict())
    ids = torch.randint(0, 257, (2, 16))
    with torch.no_grad():
        assert torch.equal(a(ids).hidden_spikes, b(ids).hidden_spikes)


def test_save_load_round_trip_auto_classes_and_generate(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config()).eval()
    tok = byte_tokenizer()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "spiking_evospikenet"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, SpikingEvoSpikeNetForCausalLM)
    ids = torch.randint(0, 257, (2, 10))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    out = loaded.generate(ids[:1, :4], max_new_tokens=20, do_sample=False, pad_token_id=256)
    assert out.shape == (1, 24)  # runs past the 16-token context by cropping the prefix
    again = loaded.generate(ids[:1, :4], max_new_tokens=20, do_sample=False, pad_token_id=256)
    assert torch.equal(out, again)  # deterministic eval: no hidden state carried between calls
    gen = pipeline("text-generation", model=str(tmp_path), tokenizer=AutoTokenizer.from_pretrained(tmp_path))
    text = gen("ROMEO:", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("ROMEO:")


def test_generation_never_reads_the_untrained_last_position(tiny_config):
    """The shifted loss gives the window's last position no label and causal attention lets only that
    position read its input, so its position embedding gets no gradient; generation must not read it."""
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(tas_mode="deterministic"))
    ids = torch.randint(0, 256, (3, 16))  # full 16-token windows
    model(ids, labels=ids).loss.backward()
    grad = model.spiking.pos_emb.weight.grad.norm(dim=1)  # (16,)
    assert grad[-1] == 0 and bool((grad[:-1] > 0).all())
    model.eval()
    assert model.generation_window == 15
    prompt = ids[:1, :12]
    out = model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=256)  # outgrows 16
    with torch.no_grad():
        model.spiking.pos_emb.weight[-1] = 100.0  # the untrained row: anything at all
    again = model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=256)
    assert torch.equal(out, again)


def test_sequence_classification_head(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForSequenceClassification(tiny_config(num_labels=2))
    ids = torch.randint(0, 256, (3, 8))
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    out = model(ids, attention_mask=mask, labels=torch.tensor([0, 1, 1]))
    assert out.logits.shape == (3, 2) and out.loss.requires_grad
    out.loss.backward()
    model.eval()
    with torch.no_grad():  # padding after the last real token does not change the prediction
        a = model(ids[:1, :5]).logits
        b = model(ids[:1], attention_mask=mask[:1]).logits
    assert torch.allclose(a, b, atol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(loaded, SpikingEvoSpikeNetForSequenceClassification)


def test_spike_statistics_match_the_energy_model(tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(readout="spikes")).eval()
    ids = torch.randint(0, 257, (2, 12))
    out = model(ids)
    stats = out.spike_stats
    names = [s.name for s in stats.layers]
    assert names[0] == "tas" and names[-2:] == ["out", "head"] and len(names) == 3 + 7 * 2
    rates = stats.layer_rates()
    total = sum(s.spikes.item() for s in stats.layers) / sum(s.neuron_steps for s in stats.layers)
    assert out.spike_rate.item() == pytest.approx(total, rel=1e-6)
    assert all(0.0 <= r <= 1.0 for r in rates.values())
    # the final population drives the head: every spike fans out to vocab_size accumulates
    out_layer = stats.layers[-2]
    assert out_layer.sops.item() == pytest.approx(out_layer.spikes.item() * 257)
    assert out_layer.neuron_steps == 4 * 2 * 12 * 32  # T x B x L x D: every step of every neuron
    counter = stats.op_counter()
    expected = (
        counter.total_sops * 0.9e-12 + counter.total_macs * 4.6e-12 + counter.total_updates * 6.4e-12
    ) / ids.numel()
    assert stats.energy_per_token_j() == pytest.approx(expected)
    # every LIF neuron's step is an update; the TAS encoder is float work (MACs), not LIF updates
    assert counter.total_updates == sum(s.neuron_steps for s in stats.layers[1:])
    assert "tas" not in counter.updates and counter.macs["tas"] == 2 * 12 * 32 * (6 + 4)
    assert stats.energy_per_token_j(HOROWITZ_45NM) > 0
    assert set(stats.summary()) == {"spike_rate", "layer_rates", "sops_per_token", "energy_per_token_j"}
    membrane = SpikingEvoSpikeNetForCausalLM(tiny_config(readout="membrane")).eval()
    head = membrane(ids).spike_stats.layers[-1]
    assert head.name == "head" and head.macs == 2 * 12 * 257 * 32  # dense D x V per token


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(1, 0, dtype=torch.long), "empty"),
        (torch.zeros(1, 17, dtype=torch.long), "context length"),
        (torch.tensor([[1, 2, 257]]), r"\[0, 257\)"),
        (torch.tensor([[-1, 2]]), r"\[0, 257\)"),
        (torch.zeros(4, dtype=torch.long), "shape"),
        (torch.zeros(1, 4), "integer"),
    ],
)
def test_bad_input_raises_clear_errors(bad, match, tiny_config):
    model = SpikingEvoSpikeNetForCausalLM(tiny_config())
    with pytest.raises(ValueError, match=match):
        model(bad)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"d_model": 30, "n_heads": 4}, "divisible"),
        ({"time_steps": 0}, "time_steps"),
        ({"neuron_backend": "lava"}, "neuron_backend"),
        ({"lif_beta": 1.0}, "lif_beta"),
        ({"vocab_size": 100}, "bos_token_id"),
        ({"tas_mode": "random"}, "tas_mode"),
    ],
)
def test_incompatible_config_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        SpikingEvoSpikeNetConfig(**kw)


def _train_rate(tiny_config, steps, **kw) -> tuple[float, float]:
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(**kw))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        ids = torch.randint(0, 64, (4, 16), generator=g)
        out = model(ids, labels=ids)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        ids = torch.randint(0, 64, (4, 16), generator=g)
        return model(ids).spike_rate.item(), out.loss.item()


def test_aeg_regulariser_lowers_the_spike_rate(tiny_config):
    base_rate, _ = _train_rate(tiny_config, 25)
    aeg_rate, _ = _train_rate(tiny_config, 25, aeg_weight=5.0)
    assert aeg_rate < 0.8 * base_rate


def test_meta_stdp_off_by_default_and_reward_moves_tau(tiny_config):
    assert SpikingEvoSpikeNetConfig().meta_stdp is False and SpikingEvoSpikeNetConfig().aeg_weight == 0.0
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(meta_stdp=True, meta_stdp_eta=2.0))
    assert model.meta_update(1.0) == [8.0, 8.0]  # first reward sets the baseline
    up = model.meta_update(2.0)  # better than the baseline: longer traces
    assert up == [pytest.approx(10.0)] * 2
    down = model.meta_update(-5.0)  # worse: shorter
    assert all(d < u for d, u in zip(down, up))
    for _ in range(50):
        model.meta_update(-1e6)
    assert model.meta_update(-1e7)[0] == pytest.approx(1.0)  # clamped to the range


def test_stdp_fast_weights_recall_successor_of_a_repeated_pattern():
    from evospikenet.models.spiking_lm import stdp_fast_weight_readout

    g = torch.Generator().manual_seed(0)
    pats = (torch.rand(6, 64, generator=g) < 0.3).float()  # six distinct sparse patterns
    seq = torch.cat([pats, pats])[None]  # A B C D E F A B C D E F
    y = stdp_fast_weight_readout(seq, torch.tensor(100.0))[0]  # (12, 64)
    for i in range(6, 11):  # at the second occurrence, the readout points at the next pattern
        sims = torch.nn.functional.cosine_similarity(y[i][None], pats, dim=-1)
        assert sims.argmax().item() == (i + 1) % 6
    assert torch.all(y[0] == 0)  # causal: nothing before the first token


def test_meta_stdp_path_is_causal(tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(meta_stdp=True)).eval()
    ids = torch.randint(0, 257, (1, 12))
    ids2 = ids.clone()
    ids2[:, 9:] = 3
    with torch.no_grad():
        assert torch.equal(model(ids).logits[:, :9], model(ids2).logits[:, :9])


def test_mean_pooling_classifier(tiny_config):
    """``classifier_pooling="mean"`` averages the readout over the real tokens, so padding changes nothing."""
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForSequenceClassification(
        tiny_config(num_labels=2, classifier_pooling="mean")
    ).eval()
    ids = torch.randint(0, 256, (2, 8))
    mask = torch.ones_like(ids)
    mask[1, 3:] = 0
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
        s, _, _ = model.spiking(ids, mask)  # (T, B, L, D) readout
        want = model.score(s.mean(0)[1, :3].mean(0))  # (C,) mean over the 3 real tokens
        alone = model(ids[1:, :3]).logits
    assert torch.allclose(out.logits[1], want, atol=1e-5)
    assert torch.allclose(out.logits[1], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="classifier_pooling"):
        tiny_config(classifier_pooling="max")


def test_bidirectional_classifier_sees_later_tokens_and_the_lm_refuses_it(tiny_config):
    torch.manual_seed(0)
    ids = torch.randint(0, 256, (2, 10))
    ids2 = ids.clone()
    ids2[:, 7:] = (ids2[:, 7:] + 5) % 256
    model = SpikingEvoSpikeNetForSequenceClassification(tiny_config(attn_causal=False)).eval()
    with torch.no_grad():
        r1, r2 = model.spiking(ids)[0], model.spiking(ids2)[0]  # (T, B, L, D) readouts
    assert not torch.equal(r1[:, :, :7], r2[:, :, :7])  # earlier tokens read later ones
    stats = model(ids).spike_stats
    causal = SpikingEvoSpikeNetForSequenceClassification(tiny_config()).eval()
    causal.load_state_dict(model.state_dict())
    both = [{s.name: s for s in m(ids).spike_stats.layers}["block0.v"].macs for m in (model, causal)]
    assert both[0] > both[1]  # the softmax runs over every token pair, not half of them
    assert stats.mean_rate() > 0
    with pytest.raises(ValueError, match="attn_causal"):
        SpikingEvoSpikeNetForCausalLM(tiny_config(attn_causal=False))


@pytest.mark.parametrize("causal, signed", [(True, False), (False, False), (True, True)])
def test_attention_event_counts_match_a_brute_force_count(tiny_config, causal, signed):
    """SOPs of the q population = spike coincidences q_i . k_j over the pairs a query reads; of v = the value
    spikes each query accumulates (sum over queries i of the spikes of the keys j it sees). With signed q and
    k (ON/OFF pairs) each channel's event is |ON - OFF|."""
    torch.manual_seed(0)
    kw = dict(signed_inputs=True, signed_qk=True, v_norm=False) if signed else {}
    model = SpikingEvoSpikeNetForSequenceClassification(tiny_config(attn_causal=causal, **kw)).eval()
    block = model.spiking.blocks[0]
    seen = {}
    hooks = [getattr(block, f"lif_{n}").register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o[0]))
             for n in "qkv"]  # fmt: skip
    ids = torch.randint(0, 256, (2, 9))
    with torch.no_grad():
        layers = {s.name: s for s in model(ids).spike_stats.layers}
    for h in hooks:
        h.remove()
    H = model.config.n_heads
    if signed:  # the hooks saw the pairs' 2D binary spikes
        seen = {n: torch.sub(*s.chunk(2, dim=-1)).abs() if n in "qk" else s for n, s in seen.items()}
    q, k, v = (seen[n].sum(0).unflatten(-1, (H, -1)) for n in "qkv")  # (B, L, H, dh) counts over T
    L = ids.shape[1]
    reads = torch.ones(L, L).tril() if causal else torch.ones(L, L)  # reads[i, j]: query i sees key j
    coinc = torch.einsum("bihd,bjhd,ij->", q, k, reads)
    av = torch.einsum("bjhd,ij->", v, reads)
    assert coinc > 0 and av > 0  # the populations fired: the comparison below is not 0 == 0
    assert layers["block0.q"].sops.item() == pytest.approx(coinc.item())
    assert layers["block0.v"].sops.item() == pytest.approx(av.item())


def test_configs_saved_before_the_block_revision_keep_their_design(tmp_path, tiny_config):
    # a config.json without embed_scale (saved by the first block design) loads with that design's values
    from evospikenet.models.spiking_lm.config import FIRST_DESIGN

    old = tiny_config().to_dict()
    for key in FIRST_DESIGN:
        old.pop(key)
    loaded = SpikingEvoSpikeNetConfig.from_dict(old)
    assert {k: getattr(loaded, k) for k in FIRST_DESIGN} == FIRST_DESIGN
    model = SpikingEvoSpikeNetForCausalLM(loaded)
    assert model.spiking.blocks[0].ln_attn is not None  # LayerNorm before the attention-output LIF
    model.save_pretrained(tmp_path)  # the saved config now names every field: it loads as it was saved
    again = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert again.config.embed_scale == 1.0 and again.spiking.blocks[0].ln_attn is not None
    ids = torch.randint(0, 257, (2, 8))
    assert torch.equal(model.eval()(ids).logits, again.eval()(ids).logits)
    # a current config keeps its own values, and the current block has no attention-output LayerNorm
    new = SpikingEvoSpikeNetConfig.from_dict(tiny_config().to_dict())
    assert new.embed_scale == 50.0 and new.attn_out_norm is False
    assert SpikingEvoSpikeNetForCausalLM(new).spiking.blocks[0].ln_attn is None


def test_embeddings_enter_tas_scaled(tiny_config):
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(embed_scale=3.0)).spiking
    ids = torch.tensor([[5, 6, 7]])
    ref = 3.0 * (model.tok_emb(ids) + model.pos_emb(torch.arange(3))[None])
    assert torch.allclose(model.embed(ids), ref)
    assert torch.allclose(
        model.embed(ids, start=2)[0, 0], 3.0 * (model.tok_emb.weight[5] + model.pos_emb.weight[2])
    )


def test_tas_spikes_enter_the_residual_stream_through_their_gain(tiny_config):
    # u0 = g * TAS(e): the same signed spikes (deterministic TAS) scaled by g; the TAS rate ignores g
    torch.manual_seed(0)
    ref = SpikingEvoSpikeNetForCausalLM(tiny_config()).spiking.eval()
    scaled = SpikingEvoSpikeNetForCausalLM(tiny_config(tas_residual_gain=0.25)).spiking.eval()
    scaled.load_state_dict(ref.state_dict())
    e = ref.embed(torch.randint(0, 257, (2, 6)))
    with torch.no_grad():
        (u1, s1), (u2, s2) = ref.encode_tokens(e), scaled.encode_tokens(e)
    assert set(u1.unique().tolist()) <= {-1.0, 0.0, 1.0} and u1.abs().sum() > 0
    assert torch.equal(u2, 0.25 * u1)
    assert s1[0].spikes.item() == s2[0].spikes.item()
    with pytest.raises(ValueError, match="tas_residual_gain"):
        tiny_config(tas_residual_gain=0.0)


def test_configs_saved_before_the_window_bound_keep_the_unbounded_window(tmp_path, tiny_config):
    old = tiny_config().to_dict()
    old.pop("tas_tau_bound")
    loaded = SpikingEvoSpikeNetConfig.from_dict(old)
    assert loaded.tas_tau_bound == 0.0 and SpikingEvoSpikeNetForCausalLM(loaded).spiking.tas.tau_bound == 0.0
    assert SpikingEvoSpikeNetConfig.from_dict(tiny_config().to_dict()).tas_tau_bound == 4.0
    assert SpikingEvoSpikeNetConfig().tas_tau_bound == 4.0  # new models get the bound
    with pytest.raises(ValueError, match="tas_tau_bound"):
        tiny_config(tas_tau_bound=1.0)


def test_resid_dropout_drops_whole_tokens_in_training_and_nothing_in_eval(tiny_config):
    torch.manual_seed(0)
    ref = SpikingEvoSpikeNetForCausalLM(tiny_config()).eval()
    drop = SpikingEvoSpikeNetForCausalLM(tiny_config(resid_dropout=0.25)).eval()
    drop.load_state_dict(ref.state_dict())
    ids = torch.randint(0, 257, (2, 12))
    with torch.no_grad():
        assert torch.equal(ref(ids).logits, drop(ids).logits)  # evaluation is unchanged
    block = drop.spiking.blocks[0].train()
    current = torch.ones(4, 8, 12, 32)  # (T, B, L, D)
    out = block._drop(current)
    assert torch.allclose(out.unique(), torch.tensor([0.0, 1.0 / 0.75]))  # inverted dropout
    assert torch.equal(out, out[:1].expand_as(out))  # one mask for all T steps of a token
    assert abs((out == 0).float().mean().item() - 0.25) < 0.03
    with pytest.raises(ValueError, match="resid_dropout"):
        tiny_config(resid_dropout=1.0)
