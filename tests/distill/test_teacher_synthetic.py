"""Teachers (classifier and causal LM made in the test), synthetic data filters, provenance and resume."""

import json

import pytest
import torch

from evospikenet.distill import SynthConfig, Teacher, generate_synthetic, model_revision, normalise


def test_classifier_teacher_matches_model(tiny_spiking_cls, byte_tok):
    t = Teacher(
        "tiny", kind="classifier", device="cpu", model=tiny_spiking_cls, tokenizer=byte_tok, batch_size=2
    )
    got = t.logits(["good film"])
    ids = torch.tensor([byte_tok("good film")["input_ids"]])
    with torch.no_grad():
        want = tiny_spiking_cls(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert t.num_labels == 2 and t.identity == "tiny@in-memory"
    assert sum(len(x) for _, x in t.iter_logits(["a", "b", "c"], progress=False)) == 3


def test_causal_teacher_scores_label_words(tiny_gpt2, byte_tok):
    t = Teacher(
        "gpt",
        kind="causal_lm",
        device="cpu",
        model=tiny_gpt2,
        tokenizer=byte_tok,
        prompt="{text} ->",
        label_words=("n", "p"),
    )
    got = t.logits(["fine"])  # (1, 2)
    ids = torch.tensor([byte_tok("fine ->")["input_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(tiny_gpt2(input_ids=ids).logits[0, -1], -1)
    assert torch.allclose(got[0], logp[[ord("n"), ord("p")]], atol=1e-5)


def test_teacher_bad_arguments(tiny_gpt2, byte_tok):
    with pytest.raises(ValueError, match="kind"):
        Teacher("x", kind="regressor", model=tiny_gpt2, tokenizer=byte_tok)
    with pytest.raises(ValueError, match="prompt"):
        Teacher("x", kind="causal_lm", model=tiny_gpt2, tokenizer=byte_tok, prompt="no slot")


def test_teacher_from_directory_and_revision(tmp_path, tiny_spiking_cls, byte_tok):
    tiny_spiking_cls.save_pretrained(tmp_path)
    byte_tok.save_pretrained(tmp_path)
    t = Teacher(str(tmp_path), device="cpu")
    assert t.kind == "classifier"
    assert t.revision == model_revision(str(tmp_path)) and t.revision.startswith("sha256-")
    assert model_revision("org/model", "abc") == "abc"


class _Labeller:
    identity = "lab@1"

    def logits(self, texts):  # confident positive for texts with 'a', unsure otherwise
        return torch.tensor([[0.0, 5.0] if "a" in t else [0.0, 0.1] for t in texts])


def _generator(model, tok):
    return Teacher("gpt", kind="causal_lm", device="cpu", model=model, tokenizer=tok)


def test_synthetic_filters_and_provenance(tiny_gpt2, byte_tok, tmp_path):
    gen = _generator(tiny_gpt2, byte_tok)
    cfg = SynthConfig(num_per_prompt=6, max_new_tokens=12, min_words=1, max_words=4, min_confidence=0.9)
    ds = generate_synthetic(
        gen,
        ["Review:", "Movie:"],
        cfg,
        labeller=_Labeller(),
        progress=False,
        work_file=tmp_path / "raw.jsonl",
    )
    info = json.loads(ds.info.description)
    c = info["counts"]
    assert c["generated"] == 12
    assert (
        c["generated"]
        == c["length"] + c["duplicate"] + c["confidence"] + c["kept"]
        == c["length"] + c["duplicate"] + c["confidence"] + len(ds)
    )
    keys = [normalise(t) for t in ds["text"]]
    assert len(set(keys)) == len(keys)
    assert all(1 <= len(t.split()) <= 4 for t in ds["text"])
    assert all(x >= 0.9 for x in ds["confidence"]) and set(ds["label"]) <= {1}
    assert set(ds["generator"]) <= {"gpt@in-memory"} and set(ds["labeller"]) <= {"lab@1"}
    assert set(ds.column_names) >= {"text", "label", "prompt", "prompt_index", "seed"}


def test_synthetic_dedup_against_exclude_and_resume(tiny_gpt2, byte_tok, tmp_path, monkeypatch):
    gen = _generator(tiny_gpt2, byte_tok)
    cfg = SynthConfig(num_per_prompt=3, max_new_tokens=8, min_words=1, max_words=50)
    work = tmp_path / "raw.jsonl"
    first = generate_synthetic(gen, ["a", "b"], cfg, prompt_labels=[0, 1], work_file=work, progress=False)
    assert set(zip(first["prompt_index"], first["label"])) <= {(0, 0), (1, 1)}
    calls = []
    monkeypatch.setattr(tiny_gpt2, "generate", lambda **kw: calls.append(1))
    again = generate_synthetic(
        gen, ["a", "b"], cfg, prompt_labels=[0, 1], work_file=work, exclude=first["text"][:1], progress=False
    )
    assert calls == []  # every prompt came from the work file
    assert again["text"] == first["text"][1:]


def test_synthetic_bad_arguments(tiny_gpt2, byte_tok):
    gen = _generator(tiny_gpt2, byte_tok)
    with pytest.raises(ValueError, match="prompts"):
        generate_synthetic(gen, [])
    with pytest.raises(ValueError, match="labeller"):
        generate_synthetic(gen, ["x"], SynthConfig(min_confidence=0.5))
    with pytest.raises(ValueError, match="max_words"):
        SynthConfig(min_words=5, max_words=2)
