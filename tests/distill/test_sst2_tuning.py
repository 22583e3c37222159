"""The SST-2 validation slice (held out of training at the sentence level, fixed by its seed) and the
``training.sst2_run --tune`` path on the debug recipe."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evospikenet.data.paths import dataset_path
from evospikenet.data.sst2 import read_sst2_tsv, tuning_splits, validation_split
from training.sst2_run import candidate_recipe

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "the film movie story plot actor cast is was a an very not good bad dull funny sad long short "
    "script music scene ending charming boring clever warm cold tired fresh old new smart silly"
).split()


def _treebank(n_sentences: int = 120, seed: int = 0) -> tuple[list[str], list[int]]:
    """SST-like rows: each sentence, then some of its contiguous word spans (its "tree"); shared short
    phrases such as ``"the film"`` recur across sentences, as in SST-2."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n_sentences):
        w = ["the", "film"] + rng.choices(WORDS, k=rng.randint(4, 9))
        y = int("good" in w or "funny" in w)
        texts.append(" ".join(w) + " ")  # GLUE's rows end with a space
        labels.append(y)
        for _ in range(4):
            i = rng.randrange(len(w) - 1)
            j = rng.randint(i + 1, len(w) - 1)  # proper spans only
            texts.append(" ".join(w[i:j]))
            labels.append(y)
    return texts, labels


def _is_span(p: str, q: str) -> bool:
    return f" {' '.join(p.split())} " in f" {' '.join(q.split())} "


def _write_tsv(path: Path, texts: list[str], labels: list[int]) -> None:
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))


def test_slice_is_disjoint_from_training_down_to_its_phrases():
    texts, _ = _treebank()
    s = validation_split(texts, fraction=0.2, seed=0)
    assert s.validation and s.train and s.dropped
    assert sorted(s.train + s.validation + s.dropped) == list(range(len(texts)))  # a partition of the rows
    val = [texts[i] for i in s.validation]
    train = [texts[i] for i in s.train]
    kept = [t for t in train if not any(_is_span(t, u) and t != u for u in texts)]  # kept sentences
    for v in val:  # a held-out sentence is maximal, and no training phrase contains it
        assert not any(_is_span(v, u) and " ".join(v.split()) != " ".join(u.split()) for u in texts)
        assert not any(_is_span(v, t) for t in train)
    for i in s.train:  # every training phrase lies inside a kept sentence
        assert any(_is_span(texts[i], k) for k in kept)
    for i in s.dropped:  # a dropped phrase lies only inside held-out sentences
        assert any(_is_span(texts[i], v) for v in val) and not any(_is_span(texts[i], k) for k in kept)
    assert "the film" in {" ".join(texts[i].split()) for i in s.train}  # shared phrases stay in training


def test_slice_is_fixed_by_its_seed_whatever_the_row_order():
    texts, _ = _treebank()
    a, b = validation_split(texts, 0.2, seed=0), validation_split(texts, 0.2, seed=0)
    assert a == b
    other = validation_split(texts, 0.2, seed=1)
    assert {texts[i] for i in other.validation} != {texts[i] for i in a.validation}
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    shuffled = [texts[i] for i in order]
    c = validation_split(shuffled, 0.2, seed=0)
    assert {shuffled[i] for i in c.validation} == {texts[i] for i in a.validation}
    assert sorted(shuffled[i] for i in c.train) == sorted(texts[i] for i in a.train)


def test_slice_size_follows_the_fraction_and_bad_arguments_are_refused():
    texts, _ = _treebank(n_sentences=1000)
    n = len(validation_split(texts, 0.1).validation)
    assert 70 <= n <= 130  # binomial(1000, 0.1): mean 100, sd 9.5
    assert len(validation_split(texts, 0.5).validation) > 3 * n
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="fraction"):
            validation_split(texts, bad)
    with pytest.raises(ValueError, match="seed"):
        validation_split(texts, 0.1, seed=True)


def test_slice_of_the_project_data_is_pinned():
    try:
        path = dataset_path("sst2") / "train.tsv"
    except FileNotFoundError:
        pytest.skip("the project data directory holds no sst2/")
    texts, labels = read_sst2_tsv(path)
    s = validation_split(texts)
    # The figures of docs/sst2.md: 709 held-out sentences, 59,076 training phrases, 5,564 dropped.
    assert (len(s.validation), len(s.train), len(s.dropped)) == (709, 59_076, 5_564)
    rows = ",".join(map(str, s.validation)).encode()
    assert hashlib.sha256(rows).hexdigest()[:16] == "f5c12a193eb7f40c"  # the same rows on every machine
    (tt, _), (vt, vl) = tuning_splits(path)
    assert len(tt) == 59_076 and vt == [texts[i] for i in s.validation] and set(vl) == {0, 1}
    assert not {" ".join(t.split()) for t in vt} & {" ".join(t.split()) for t in tt}


def test_datamodule_tunes_on_the_slice_without_reading_dev(tmp_path):
    from training.distill import SST2DistillDataModule

    texts, labels = _treebank()
    (tmp_path / "sst2").mkdir()
    _write_tsv(tmp_path / "sst2" / "train.tsv", texts, labels)  # no dev.tsv: reading it would fail
    dm = SST2DistillDataModule(data_dir=str(tmp_path), max_len=16, batch_size=8, tuning=True)
    dm.setup("fit")
    split = validation_split(texts)
    assert len(dm.train_set) == len(split.train) and len(dm.val_set) == len(split.validation)
    val_ids = {tuple(r.tolist()) for r in dm.val_set.ids}
    assert not val_ids & {tuple(r.tolist()) for r in dm.train_set.ids}
    with pytest.raises(ValueError, match="dev.tsv|SST-2 TSV"):
        SST2DistillDataModule(data_dir=str(tmp_path), max_len=16).setup("fit")


def test_candidate_recipe_swaps_the_teacher_and_keeps_outputs_apart(tmp_path):
    out, teacher = tmp_path / "T4_w3_e2", tmp_path / "teacher"
    recipe = yaml.safe_load((REPO / "recipes/sst2/distill.yaml").read_text())
    init = recipe["model"]["init_args"]
    mine = (init["model_config"]["time_steps"], init["feature_weight"], recipe["trainer"]["max_epochs"])
    assert all(a != b for a, b in zip(mine, (4, 3.0, 2)))  # every value below differs from the recipe's
    cfg = candidate_recipe(str(REPO / "recipes/sst2/distill.yaml"), out, teacher, 4, 3.0, 2)
    tr, m, d = cfg["trainer"], cfg["model"]["init_args"], cfg["data"]["init_args"]
    assert m["model_config"]["time_steps"] == 4 and m["feature_weight"] == 3.0 and tr["max_epochs"] == 2
    assert d["tuning"] is True and d["teacher"] == m["feature_teacher"] == str(teacher)
    assert d["soft_label_cache"] == str(tmp_path / "soft_labels") and "max_steps" not in tr
    assert tr["limit_val_batches"] == 0 and tr["enable_checkpointing"] is False
    paths = [tr["default_root_dir"], tr["logger"]["init_args"]["save_dir"]] + [
        c["init_args"]["dirpath"] for c in tr["callbacks"] if "dirpath" in c.get("init_args", {})
    ]
    assert paths and all(p.startswith(str(out)) for p in paths)
    bad = yaml.safe_load((REPO / "recipes/sst2/distill.yaml").read_text())
    bad["model"]["init_args"]["feature_teacher"] = "artifacts/sst2/teacher/"  # not the exact path
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="must not see dev"):
        candidate_recipe(str(tmp_path / "bad.yaml"), out, teacher, 4, 1.0, 1)


def _tune(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    args = [
        "--tune",
        f"--data-dir={tmp_path / 'data'}",
        f"--tune-dir={tmp_path / 'tune'}",
        f"--distill-recipe={REPO / 'recipes/sst2/distill_debug.yaml'}",
        "--teacher-steps=2",
        "--student-steps=2",
        "--grid-time-steps",
        "1",
        "2",
        "--grid-feature-weights=0.5",
        "--grid-epochs",
        "1",
        "2",
        *extra,
    ]
    cmd = [sys.executable, "-m", "training.sst2_run", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_tune_path_on_the_debug_recipe(tmp_path):
    texts, labels = _treebank()
    (tmp_path / "data" / "sst2").mkdir(parents=True)
    _write_tsv(tmp_path / "data" / "sst2" / "train.tsv", texts, labels)  # no dev.tsv on purpose
    p = _tune(tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    last = json.loads(p.stdout.strip().splitlines()[-1])
    table = json.loads((tmp_path / "tune" / "tune.json").read_text())
    runs = table["candidates"]
    grid = {"T1_w0.5_e1", "T2_w0.5_e1"}
    assert grid < set(runs) and len(runs) == 3
    best = max(sorted(grid), key=lambda k: runs[k]["accuracy"])  # the first of equals
    assert f"{best[:-1]}2" in runs  # the second epoch count is tried with the grid's best
    assert last["chosen"] == table["chosen"] == max(runs, key=lambda k: runs[k]["accuracy"])
    assert last["slice_accuracy"] == {k: r["accuracy"] for k, r in runs.items()}
    split = validation_split(texts)
    assert table["phrases"] == {"train": len(split.train), "validation_sentences": len(split.validation)}
    assert all(r["n"] == len(split.validation) and 0 <= r["accuracy"] <= 1 for r in runs.values())
    for k in runs:
        cfg = yaml.safe_load((tmp_path / "tune" / k / "recipe.yaml").read_text())
        assert cfg["data"]["init_args"]["tuning"] is True
        assert (tmp_path / "tune" / k / "model" / "config.json").is_file()
    assert not (tmp_path / "artifacts").exists()  # every output under --tune-dir
    again = _tune(tmp_path)  # finished candidates are reused, the table is the same
    assert again.returncode == 0 and again.stdout.count("not retrained") == 3
    assert json.loads((tmp_path / "tune" / "tune.json").read_text())["candidates"] == runs
