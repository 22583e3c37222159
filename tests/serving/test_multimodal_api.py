"""``/v1/multimodal`` in process: answers equal ``generate``'s, insight shapes, 4xx naming the field."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

ARTIFACT = os.path.join("artifacts", "multimodal", "model")


@pytest.fixture(scope="module")
def mm_services(tmp_path_factory):
    from serving.debug_models import make_debug_multimodal
    from serving.local import ModelPaths, Services

    path = make_debug_multimodal(tmp_path_factory.mktemp("evospikenet-debug-models-mm") / "multimodal")
    return Services(ModelPaths(multimodal=path), kinds=("multimodal",))


@pytest.fixture(scope="module")
def mm_client(mm_services):
    from fastapi.testclient import TestClient

    from serving.api import create_api
    from serving.local import LocalBackend

    with TestClient(create_api(LocalBackend(mm_services)), base_url="http://127.0.0.1") as c:
        yield c


def _digit(k: int = 0) -> list[float]:
    from evospikenet.data.multimodal import digits_split

    x, _ = digits_split()["test"]
    return x[k].reshape(-1).astype(float).tolist()


def test_image_answer_matches_generate_and_insight_shapes(mm_client, mm_services):
    img = _digit(0)
    r = mm_client.post("/v1/multimodal", json={"text": "what digit is this ?", "image": img})
    assert r.status_code == 200, r.text
    b = r.json()
    m = mm_services.mm
    want = m.generate(text="what digit is this ?", images=torch.tensor(img).reshape(1, 1, 8, 8))[0]
    assert b["answer"] == want and b["model"] == "debug"
    P, L = b["prefix_len"], len(b["text_tokens"])
    assert P == 4 and b["prefix_tokens"] == ["image.0", "image.1", "image.2", "image.3"]
    assert b["text_tokens"][:7] == ["<bos>", "what", "digit", "is", "this", "?", "<sep>"]
    att = torch.tensor(b["cross_attention"])
    assert att.shape == (L, P) and torch.all(att >= 0)
    # a causal softmax row sums to 1 over P + i + 1 keys, so its prefix share is at most 1
    assert torch.allclose(att.sum(-1), torch.tensor(b["prefix_mass"]), atol=1e-5)
    assert torch.all(att.sum(-1) <= 1 + 1e-5)
    T = m.config.time_steps
    assert set(b["encoder_spikes"]) == {"image.enc0", "image.enc1"}
    for s in b["encoder_spikes"].values():
        raster = np.array(s["raster"])
        assert raster.shape == (T, min(64, s["neurons"])) and set(raster.ravel()) <= {0, 1}
        assert 0.0 <= s["rate"] <= 1.0


def test_signal_answer_rr_defaults_to_mean(mm_client, mm_services):
    beat = [float(np.sin(i / 5.0)) for i in range(86)]
    body = {"text": "what kind of beat is this ?", "signal": beat, "return_insight": False}
    plain = mm_client.post("/v1/multimodal", json=body).json()
    zero_rr = mm_client.post("/v1/multimodal", json={**body, "rr": [0.0] * 6}).json()  # debug rr_mean: 0
    assert plain["answer"] == zero_rr["answer"]
    assert "cross_attention" not in plain  # return_insight false: the answer only
    want = mm_services.mm.generate(text=body["text"], signals=torch.tensor([beat]), rr=torch.zeros(1, 6))[0]
    assert plain["answer"] == want
    full = mm_client.post("/v1/multimodal", json={**body, "return_insight": True}).json()
    assert full["prefix_tokens"][0] == "signal.0" and set(full["encoder_spikes"]) == {
        "signal.enc0",
        "signal.enc1",
    }


def test_healthz_reports_multimodal_sizes(mm_client):
    h = mm_client.get("/healthz").json()
    assert h["models"]["multimodal"] == "debug"
    assert h["multimodal"]["image_size"] == 8 and h["multimodal"]["signal_length"] == 86


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "what digit is this ?", "image": [1.0] * 63}, "image"),  # wrong image size
        ({"text": "what digit is this ?", "image": [1.0] * 128}, "image"),  # two channels' worth
        ({"text": "what digit is this ?", "image": [17.0] * 64}, "image"),  # pixel over 16
        ({"text": "what digit is this ?", "image": [-1.0] * 64}, "image"),  # negative pixel
        ({"text": "what beat is this ?", "signal": [0.0] * 85}, "signal"),  # wrong signal length
        ({"text": "what beat is this ?", "signal": [0.0] * 86, "rr": [0.0] * 5}, "rr"),  # wrong rr length
        ({"text": "what digit is this ?", "signal": [0.0] * 86}, "image"),  # prompt names a missing image
        ({"text": "what kind of beat is this ?", "image": [0.0] * 64}, "signal"),  # ... a missing beat
        ({"text": "what is this ?"}, "image"),  # no modality at all
        ({"text": "what is this ?", "image": [0.0] * 64, "rr": [0.0] * 6}, "rr"),  # rr without a signal
        ({"text": "", "image": [0.0] * 64}, "text"),
        ({"text": "what digit ?", "image": [0.0] * 64, "max_new_tokens": 0}, "max_new_tokens"),
        ({"text": "what digit ?", "image": [0.0] * 64, "model": "other"}, "model"),
        ({"text": "what digit ?", "image": [0.0] * 64, "colour": 1}, "colour"),
        ({"text": "what digit ?", "image": "abc"}, "image"),
        ({"text": " ".join(["digit"] * 60), "image": [0.0] * 64}, "text"),  # over the context
    ],
)
def test_bad_requests_name_the_field(mm_client, body, field):
    r = mm_client.post("/v1/multimodal", json=body)
    assert 400 <= r.status_code < 500, r.text
    j = r.json()
    assert j["message"].startswith(field), j
    assert any(field in d["loc"] for d in j["detail"]), j


@pytest.mark.skipif(not os.path.isfile(os.path.join(ARTIFACT, "config.json")), reason="no trained model")
def test_default_path_serves_the_trained_model_which_reads_digits():
    from evospikenet.data.multimodal import digits_split, named_digits
    from serving.local import ModelPaths, Services, resolve_paths

    p = resolve_paths(ModelPaths(lm="x", sentiment="x", ecg="x"))
    assert p.multimodal == os.path.abspath(ARTIFACT)
    s = Services(ModelPaths(multimodal=p.multimodal), kinds=("multimodal",))
    x, y = digits_split()["test"]
    right = 0
    for k in range(5):
        r = s.multimodal({"text": "what digit is this ?", "image": x[k].reshape(-1).tolist()})
        right += named_digits(r["answer"]) == {int(y[k])}
    assert right >= 4  # 98.6 % held-out accuracy (docs/multimodal.md)
