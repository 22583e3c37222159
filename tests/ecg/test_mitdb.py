"""MIT-BIH loader: AAMI labels, RR features, edge padding, time split, and bad input on corrupted copies."""

import logging
import shutil

import numpy as np
import pytest

from evospikenet.data import mitdb
from evospikenet.data.mitdb import (
    AAMI_MAP,
    BeatWindow,
    RecordError,
    de_chazal_split,
    load_beats,
    rr_features,
    split_by_time,
)


def _mitdb():
    try:
        from evospikenet.data.paths import dataset_path

        return dataset_path("mitdb")
    except FileNotFoundError:
        pytest.skip("shared MIT-BIH data not present")


@pytest.fixture
def copy_records(tmp_path):
    """Copy records of the shared mitdb into tmp_path (never touch the shared files)."""

    def make(*names):
        src = _mitdb()
        for n in names:
            for ext in ("hea", "dat", "atr"):
                shutil.copy(src / f"{n}.{ext}", tmp_path / f"{n}.{ext}")
        return tmp_path

    return make


def test_aami_mapping_follows_the_readme():
    groups = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
    for k, (cls, syms) in enumerate(groups.items()):
        for s in syms:
            assert AAMI_MAP[s] == k, (s, cls)
    assert len(AAMI_MAP) == 15
    assert not set(AAMI_MAP) & mitdb.NON_BEAT_SYMBOLS


def test_rr_features_closed_form():
    fs = 100.0
    samples = np.array([0, 100, 150, 300])  # RR = 1.0, 0.5, 1.5 s
    f = rr_features(samples, fs, local=2)
    pre = np.array([1.0, 1.0, 0.5, 1.5])  # the first beat borrows its post-RR
    post = np.array([1.0, 0.5, 1.5, 1.5])  # the last beat borrows its pre-RR
    local = np.array([1.0, 1.0, 0.75, 1.0])  # mean of the last 2 pre-RRs
    avg = pre.mean()
    np.testing.assert_allclose(
        f, np.stack([pre, post, local, pre / avg, post / avg, local / avg], 1), rtol=1e-6
    )


def test_window_validation_and_length():
    assert BeatWindow(90, 166, 3).length == 86
    assert BeatWindow(4, 4, 1).length == 8
    with pytest.raises(ValueError, match="downsample"):
        BeatWindow(90, 166, 0)
    with pytest.raises(ValueError, match="before"):
        BeatWindow(-1, 166, 1)


def test_edge_beats_are_padded_not_dropped():
    sig = np.arange(20, dtype=np.float64)
    w = BeatWindow(before=4, after=4, downsample=1, band=None)
    x = mitdb._windows(sig, np.array([1, 10, 18]), w)
    np.testing.assert_array_equal(x[0], [0, 0, 0, 0, 1, 2, 3, 4])  # left edge repeats sample 0
    np.testing.assert_array_equal(x[1], np.arange(6, 14))
    np.testing.assert_array_equal(x[2], [14, 15, 16, 17, 18, 19, 19, 19])


def test_real_record_counts_match_readme_and_split_by_time():
    beats = load_beats(_mitdb(), ["100", "232"], BeatWindow(downsample=3))
    c100 = np.bincount(beats.y[beats.record == "100"], minlength=5)
    c232 = np.bincount(beats.y[beats.record == "232"], minlength=5)
    assert c100.tolist() == [1857, 26, 0, 0, 0] and c232.tolist() == [339, 1138, 0, 0, 0]
    assert beats.x.shape == (len(beats), 86) and np.isfinite(beats.x).all() and np.isfinite(beats.rr).all()
    train, val = split_by_time(beats, 0.8)
    assert len(train) + len(val) == len(beats)
    for rec in ("100", "232"):  # every training beat of a record precedes every validation beat
        assert train.sample[train.record == rec].max() < val.sample[val.record == rec].min()
        assert train.frac[train.record == rec].max() < 0.8 <= val.frac[val.record == rec].min()
    with pytest.raises(ValueError, match="train_fraction"):
        split_by_time(beats, 1.0)


def test_de_chazal_needs_all_48_records():
    r = de_chazal_split(["100", "208"])
    assert r["measurable"] is False and "2 of 48" in r["reason"]
    r = de_chazal_split(list(mitdb.ALL_RECORDS))
    assert r["measurable"] and len(r["train"]) == 22 and len(r["test"]) == 22
    assert not set(r["train"]) & set(r["test"])


def test_header_without_dat_names_the_record_and_others_go_on(copy_records, caplog):
    d = copy_records("100", "232")
    (d / "232.dat").unlink()
    with pytest.raises(RecordError, match="'232'.*232.dat"):
        load_beats(d, ["232"], strict=True)
    with caplog.at_level(logging.ERROR):
        beats = load_beats(d, ["100", "232"])
    assert set(beats.record) == {"100"} and len(beats) == 1883
    assert [e.record for e in beats.errors] == ["232"] and "232" in caplog.text


def test_missing_and_corrupt_records(copy_records):
    d = copy_records("100", "232")
    (d / "100.dat").write_bytes((d / "100.dat").read_bytes()[:50000])  # truncated signal
    (d / "232.hea").write_text("this is not a header\n")
    beats_err = []
    for rec, match in (("100", "'100'.*corrupt signal"), ("232", "'232'.*header"), ("999", "'999'.*missing")):
        with pytest.raises(RecordError, match=match) as e:
            load_beats(d, [rec], strict=True)
        beats_err.append(e.value.record)
    assert beats_err == ["100", "232", "999"]
    with pytest.raises(FileNotFoundError, match="no usable record"):
        load_beats(d, ["100", "232", "999"])


def _rewrite(d, name, signal=None, symbols=None):
    """Rewrite record ``name`` in ``d`` with a new signal and/or annotation symbols (wfdb writers)."""
    import wfdb

    rec = wfdb.rdrecord(str(d / name))
    ann = wfdb.rdann(str(d / name), "atr")
    if signal is not None:
        wfdb.wrsamp(
            name,
            fs=rec.fs,
            units=rec.units,
            sig_name=rec.sig_name,
            p_signal=signal,
            fmt=["16", "16"],
            write_dir=str(d),
        )
    if symbols is not None:
        wfdb.wrann(name, "atr", ann.sample, symbol=symbols(list(ann.symbol)), write_dir=str(d))


def test_unknown_beat_symbols_warn_and_are_skipped(copy_records):
    d = copy_records("100")

    def relabel(sym):
        beats = [i for i, s in enumerate(sym) if s == "N"]
        for i in beats[:3]:
            sym[i] = "?"
        return sym

    _rewrite(d, "100", symbols=relabel)
    beats = load_beats(d, ["100"])
    assert len(beats) == 1883 - 3
    assert any("'100'" in w and "'?': 3" in w for w in beats.warnings)


def test_nan_samples_are_interpolated_all_nan_is_an_error(copy_records):
    import wfdb

    d = copy_records("100")
    sig = wfdb.rdrecord(str(d / "100")).p_signal.copy()
    sig[1000:1100, 0] = np.nan
    _rewrite(d, "100", signal=sig)
    beats = load_beats(d, ["100"])
    assert len(beats) == 1883 and np.isfinite(beats.x).all()
    assert any("'100'" in w and "NaN" in w for w in beats.warnings)
    rec = wfdb.rdrecord(str(d / "100"), physical=False)
    dig = rec.d_signal.astype(np.int64)
    dig[:, 0] = -32768  # the format-16 "invalid sample" code: read back as NaN
    wfdb.wrsamp(
        "100",
        fs=rec.fs,
        units=rec.units,
        sig_name=rec.sig_name,
        d_signal=dig,
        fmt=["16", "16"],
        adc_gain=rec.adc_gain,
        baseline=rec.baseline,
        write_dir=str(d),
    )
    assert np.isnan(wfdb.rdrecord(str(d / "100")).p_signal[:, 0]).all()
    with pytest.raises(RecordError, match="'100'.*NaN"):
        load_beats(d, ["100"], strict=True)
