r"""MIT-BIH Arrhythmia Database: beats, RR-interval features and AAMI labels, read through ``wfdb``.

A record is read with ``wfdb.rdrecord`` / ``wfdb.rdann`` from a directory of WFDB files (``NNN.hea``,
``NNN.dat``, ``NNN.atr``), or fetched first with ``wfdb.dl_database("mitdb", dir)`` (:func:`download_mitdb`).
One lead (``MLII`` where the record has it, else the first) is band-passed (0.5-40 Hz, zero phase) and a
window of ``before + after`` samples is cut around every annotated R peak; a window that crosses the
record's edge is padded with the edge value, never dropped. With ``downsample = d`` every d-th sample is
kept (the band-pass removes everything above the new Nyquist frequency for d <= 4 at 360 Hz).

RR-interval features of beat ``i`` with R peaks ``r_i`` (seconds), as in de Chazal et al. 2004:

.. math::

    \mathrm{pre}_i = r_i - r_{i-1}, \quad \mathrm{post}_i = r_{i+1} - r_i, \quad
    \mathrm{local}_i = \mathrm{mean}(\mathrm{pre}_{i-9..i}), \quad \mathrm{avg} = \overline{\mathrm{pre}}

and the vector is ``[pre, post, local, pre/avg, post/avg, local/avg]`` (``RR_FEATURES``). The first beat
borrows its post-RR as pre-RR and the last its pre-RR as post-RR. AAMI classes (N, S, V, F, Q) follow the data
README: N = {N, L, R, e, j}; S = {A, a, J, S}; V = {V, E}; F = {F}; Q = {/, f, Q}.

Bad input never stops the other records: a missing or corrupt record, a header without its ``.dat``, a
record sampled at another rate than the window's ``fs`` (the rate the model was trained at), or a lead that
is all NaN raises :class:`RecordError` naming the record (collected in ``BeatSet.errors`` when
``strict=False``); unknown beat symbols and NaN samples are warnings naming the record (the beats are
skipped, the NaNs linearly interpolated).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .paths import dataset_path

__all__ = [
    "AAMI_CLASSES",
    "AAMI_MAP",
    "NON_BEAT_SYMBOLS",
    "RR_FEATURES",
    "DS1",
    "DS2",
    "ALL_RECORDS",
    "RecordError",
    "BeatWindow",
    "BeatSet",
    "list_records",
    "load_record",
    "load_beats",
    "rr_features",
    "split_by_time",
    "de_chazal_split",
    "download_mitdb",
]

log = logging.getLogger(__name__)

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
_GROUPS = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
AAMI_MAP = {sym: AAMI_CLASSES.index(c) for c, syms in _GROUPS.items() for sym in syms}
# Annotation codes that mark no beat (rhythm, noise, signal quality, comments, waves, flutter).
NON_BEAT_SYMBOLS = frozenset(" +~|!x[]\"=`'^tusTD*p@()")
RR_FEATURES = ("pre_rr", "post_rr", "local_rr", "pre_rr/avg", "post_rr/avg", "local_rr/avg")
# de Chazal et al. 2004 inter-patient split (the four paced records 102, 104, 107, 217 are in neither).
DS1 = ("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230").split()
DS2 = ("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234").split()
ALL_RECORDS = tuple(sorted([*DS1, *DS2, "102", "104", "107", "217"]))


class RecordError(ValueError):
    """A record that cannot be used; ``record`` names it and the message says why."""

    def __init__(self, record: str, reason: str) -> None:
        super().__init__(f"record {record!r}: {reason}")
        self.record = record
        self.reason = reason


@dataclass(frozen=True)
class BeatWindow:
    """Where and how beats are cut (samples at the record's own rate)."""

    before: int = 90  # samples kept before the R peak (0.25 s at 360 Hz)
    after: int = 166  # samples kept from the R peak on (0.46 s at 360 Hz); window = before + after
    downsample: int = 2  # keep every d-th sample of the window (360 Hz -> 180 Hz for d = 2)
    band: tuple = (0.5, 40.0)  # band-pass edges in Hz (zero-phase Butterworth, order 2); None: raw
    fs: float = 360.0  # sampling rate in Hz the sample counts refer to; records at another rate are rejected

    def __post_init__(self) -> None:
        for name in ("before", "after", "downsample"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if name == "downsample" else 0):
                raise ValueError(
                    f"{name} must be a {'positive' if name == 'downsample' else 'non-negative'} int, "
                    f"got {v!r}"
                )
        if self.before + self.after < self.downsample:
            raise ValueError(f"window before + after = {self.before + self.after} is shorter than one sample")

    @property
    def length(self) -> int:
        """Samples per beat after downsampling."""
        return len(range(0, self.before + self.after, self.downsample))


@dataclass
class BeatSet:
    """Beats of one or more records, in record order then time order."""

    x: np.ndarray  # (n, L) float32 beat windows (mV, band-passed)
    rr: np.ndarray  # (n, 6) float32 RR features, see RR_FEATURES
    y: np.ndarray  # (n,) int64 AAMI class index
    record: np.ndarray  # (n,) str record name of each beat
    sample: np.ndarray  # (n,) int64 R-peak sample index in its record
    frac: np.ndarray  # (n,) float32 R-peak position as a fraction of its record's length
    errors: list = field(default_factory=list)  # RecordError of every record skipped
    warnings: list = field(default_factory=list)  # text of every warning (unknown symbols, NaNs)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> BeatSet:
        """The beats where ``mask`` holds (errors and warnings are kept)."""
        return BeatSet(
            self.x[mask],
            self.rr[mask],
            self.y[mask],
            self.record[mask],
            self.sample[mask],
            self.frac[mask],
            list(self.errors),
            list(self.warnings),
        )

    def counts(self) -> dict:
        """Beats per AAMI class."""
        return {c: int((self.y == i).sum()) for i, c in enumerate(AAMI_CLASSES)}


def list_records(data_dir: str | os.PathLike) -> list[str]:
    """Record names of every ``*.hea`` in ``data_dir`` (sorted)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"data_dir {str(d)!r} is not a directory")
    return sorted(p.stem for p in d.glob("*.hea"))


def _bandpass(sig: np.ndarray, fs: float, band) -> np.ndarray:
    if band is None:
        return sig
    from scipy.signal import butter, sosfiltfilt

    lo, hi = band
    hi = min(hi, 0.45 * fs)
    sos = butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, sig) if len(sig) > 30 else sig - np.mean(sig)


def load_record(data_dir: str | os.PathLike, record: str) -> tuple[np.ndarray, float, np.ndarray, list, list]:
    """Read one record: ``(signal (S,) mV, fs, beat samples (n,), beat symbols, warnings)``.

    Beat annotations with symbols outside ``AAMI_MAP`` (e.g. ``B``, ``r``, ``?``) are returned too (they are
    R peaks for the RR intervals) and reported in the warnings; ``load_beats`` drops them.

    Raises :class:`RecordError` naming the record when its files are missing or unreadable, when the
    annotation is missing, or when the chosen lead is all NaN. NaN samples are interpolated (a warning).
    """
    import wfdb

    d = Path(data_dir)
    base = d / record
    for ext in ("hea", "atr"):
        if not (d / f"{record}.{ext}").is_file():
            raise RecordError(record, f"missing {record}.{ext} in {str(d)!r}")
    try:
        hdr = wfdb.rdheader(str(base))
    except Exception as e:  # wfdb raises many types for a bad header
        raise RecordError(record, f"corrupt header {record}.hea ({type(e).__name__}: {e})") from e
    for fname in {s for s in (hdr.file_name or []) if s}:
        if not (d / fname).is_file():
            raise RecordError(record, f"header names signal file {fname!r}, which is missing in {str(d)!r}")
    try:
        rec = wfdb.rdrecord(str(base))
    except Exception as e:
        raise RecordError(record, f"corrupt signal file ({type(e).__name__}: {e})") from e
    try:
        ann = wfdb.rdann(str(base), "atr")
    except Exception as e:
        raise RecordError(record, f"corrupt annotation file {record}.atr ({type(e).__name__}: {e})") from e
    if rec.p_signal is None or rec.p_signal.ndim != 2 or rec.p_signal.shape[0] == 0:
        raise RecordError(record, "no signal samples")
    names = list(rec.sig_name or [])
    lead = names.index("MLII") if "MLII" in names else 0
    sig = rec.p_signal[:, lead].astype(np.float64)
    warns = []
    bad = ~np.isfinite(sig)
    if bad.all():
        raise RecordError(record, f"lead {names[lead] if names else 0} holds no finite sample (all NaN)")
    if bad.any():
        idx = np.arange(len(sig))
        sig[bad] = np.interp(idx[bad], idx[~bad], sig[~bad])
        warns.append(f"record {record!r}: {int(bad.sum())} NaN samples in lead {names[lead]}, interpolated")
    samples, symbols = [], []
    unknown: dict[str, int] = {}
    for s, sym in zip(np.asarray(ann.sample), ann.symbol):
        if sym in NON_BEAT_SYMBOLS or not (0 <= s < len(sig)):
            continue
        samples.append(int(s))
        symbols.append(sym)
        if sym not in AAMI_MAP:
            unknown[sym] = unknown.get(sym, 0) + 1
    if unknown:
        warns.append(
            f"record {record!r}: skipped beats with unknown symbols {unknown} (kept for RR intervals)"
        )
    return sig, float(rec.fs), np.asarray(samples, dtype=np.int64), symbols, warns


def rr_features(samples: np.ndarray, fs: float, local: int = 10) -> np.ndarray:
    """RR features (n, 6) of R peaks ``samples`` (n,) at rate ``fs``; see the module docstring."""
    n = len(samples)
    if n == 0:
        return np.zeros((0, len(RR_FEATURES)), dtype=np.float32)
    if n == 1:
        pre = post = np.array([1.0])
    else:
        d = np.diff(samples.astype(np.float64)) / fs  # (n-1,) seconds
        pre = np.concatenate([[d[0]], d])
        post = np.concatenate([d, [d[-1]]])
    c = np.cumsum(np.concatenate([[0.0], pre]))
    lo = np.maximum(np.arange(n) - local + 1, 0)
    loc = (c[np.arange(n) + 1] - c[lo]) / (np.arange(n) + 1 - lo)
    avg = max(float(pre.mean()), 1e-6)
    return np.stack([pre, post, loc, pre / avg, post / avg, loc / avg], axis=1).astype(np.float32)


def _windows(sig: np.ndarray, samples: np.ndarray, w: BeatWindow) -> np.ndarray:
    pad = max(w.before, w.after)
    padded = np.pad(sig, pad, mode="edge")
    offs = np.arange(-w.before, w.after, w.downsample)
    return padded[samples[:, None] + offs[None, :] + pad].astype(np.float32)  # (n, L)


def load_beats(
    data_dir: str | os.PathLike | None = None,
    records: list[str] | None = None,
    window: BeatWindow | None = None,
    strict: bool = False,
) -> BeatSet:
    """Beats of ``records`` (default: every record in ``data_dir``, default the shared ``mitdb``).

    With ``strict=False`` a bad record is logged, kept in ``errors`` and skipped; with ``strict=True`` its
    :class:`RecordError` propagates. Raises ``FileNotFoundError`` if no record yields a beat.
    """
    d = Path(data_dir) if data_dir is not None else dataset_path("mitdb")
    w = window or BeatWindow()
    names = list(records) if records is not None else list_records(d)
    if not names:
        raise FileNotFoundError(f"no WFDB records (*.hea) in {str(d)!r}")
    parts, errors, warns = [], [], []
    for name in names:
        try:
            sig, fs, samples, symbols, rw = load_record(d, str(name))
        except RecordError as e:
            if strict:
                raise
            log.error("%s", e)
            errors.append(e)
            continue
        for msg in rw:
            log.warning("%s", msg)
        warns.extend(rw)
        known = np.array([s in AAMI_MAP for s in symbols], dtype=bool)
        problem = None
        if abs(fs - w.fs) > 1e-6:
            problem = (
                f"{d / str(name)}.hea: sampling rate {fs:g} Hz, but the beat window (the model) is for "
                f"{w.fs:g} Hz; resample the record to {w.fs:g} Hz"
            )
        elif len(samples) == 0:
            problem = "no annotated beats"
        elif not known.any():
            problem = "no beat with an AAMI-mapped symbol"
        if problem is not None:
            e = RecordError(str(name), problem)
            if strict:
                raise e
            log.error("%s", e)
            errors.append(e)
            continue
        rr = rr_features(samples, fs)[known]  # RR from every beat, unknown symbols included
        samples = samples[known]
        x = _windows(_bandpass(sig, fs, w.band), samples, w)
        y = np.array([AAMI_MAP[s] for s, k in zip(symbols, known) if k], dtype=np.int64)
        parts.append((x, rr, y, np.full(len(y), str(name)), samples, (samples / len(sig)).astype(np.float32)))
    if not parts:
        raise FileNotFoundError(f"no usable record in {str(d)!r}: " + "; ".join(map(str, errors)))
    cols = [np.concatenate(c) for c in zip(*parts)]
    return BeatSet(*cols, errors=errors, warnings=warns)


def split_by_time(beats: BeatSet, train_fraction: float = 0.8) -> tuple[BeatSet, BeatSet]:
    """Within-patient split by time: beats in the first ``train_fraction`` of each record train, the rest
    validate (never a shuffle of neighbouring beats across the split)."""
    if not (0.0 < train_fraction < 1.0):
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction!r}")
    early = beats.frac < train_fraction
    return beats.subset(early), beats.subset(~early)


def de_chazal_split(available: list[str]) -> dict:
    """The DS1/DS2 inter-patient split if all 48 records are available, else why it is not measurable.

    Returns ``{"measurable": True, "train": DS1, "test": DS2}`` or ``{"measurable": False, "reason": ...}``.
    """
    have = set(map(str, available))
    missing = [r for r in ALL_RECORDS if r not in have]
    if missing:
        return {
            "measurable": False,
            "reason": f"{len(ALL_RECORDS) - len(missing)} of 48 records have signals "
            f"(missing {len(missing)}, e.g. {missing[:5]}); de Chazal DS1/DS2 needs all 48",
        }
    return {"measurable": True, "train": list(DS1), "test": list(DS2)}


def download_mitdb(dest: str | os.PathLike, records: list[str] | None = None) -> Path:
    """Fetch MIT-BIH from PhysioNet with ``wfdb.dl_database("mitdb", dest)`` (needs internet)."""
    import wfdb

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wfdb.dl_database("mitdb", str(dest), records=records or "all")
    return dest
