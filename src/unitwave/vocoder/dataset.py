"""Training data of a unit vocoder: (units, F0 bins, speaker, audio segment) from a unit corpus + manifest.

The unit corpus is ``<name>_corpus_timestamped.jsonl`` (docs/FORMATS.md: frame-level ``units`` and
``frame_hop_s`` per utterance); the audio manifest gives each id's ``audio_filepath`` (+ ``offset``,
``duration``, ``speaker``). Unit frame ``i`` stands for samples ``[i * hop, (i + 1) * hop)``, with
``hop = frame_hop_s * sample_rate`` equal to the generator's upsampling (the corpus' ``frame_offset_s``,
a few ms, is ignored as fairseq does, so that resynthesized audio starts where the original starts).
F0 is extracted once per utterance on the unit frames and cached (``pitch.F0Cache``), unless a track is
given: an ``f0`` list (Hz per unit frame, 0 = unvoiced) in the corpus record, or an ``f0_filepath``
(``.npy`` of the same) in the corpus or manifest record.
"""

from __future__ import annotations

import dataclasses as dc
import logging
import typing as tp
from pathlib import Path

import numpy as np
import torch

from unitwave.data.manifest import iter_jsonl, resolve_audio
from unitwave.data.records import audio_slice
from unitwave.vocoder.config import VocoderConfig
from unitwave.vocoder.pitch import F0Cache, quantize_f0, unit_f0

log = logging.getLogger("unitwave")


@dc.dataclass(frozen=True)
class UnitUtterance:
    """One utterance of a unit corpus joined with its audio."""

    id: str
    audio_filepath: str
    units: np.ndarray  # (N,) int64 unit frames
    frame_hop_s: float
    offset: float = 0.0  # seconds into audio_filepath
    duration: float | None = None  # seconds; None: to the end of the file
    speaker: str | None = None
    f0_hz: np.ndarray | None = None  # (N,) given F0 track, Hz per unit frame
    f0_filepath: str | None = None  # .npy holding such a track


def read_unit_corpus(corpus: Path, audio_manifest: Path | None = None) -> list[UnitUtterance]:
    """Utterances of ``corpus`` (JSONL), their audio taken from ``audio_manifest`` by id when given.

    Corpus records missing from the manifest are skipped (counted in a warning); relative audio paths
    resolve against the folder of the file that holds them.
    """
    corpus = Path(corpus)
    if not corpus.is_file():
        raise FileNotFoundError(f"unit corpus not found: {corpus}")
    audio: dict[str, dict[str, tp.Any]] | None = None
    if audio_manifest is not None:
        base = Path(audio_manifest).absolute().parent
        audio = {}
        for rec in iter_jsonl(Path(audio_manifest)):
            if "id" in rec and isinstance(rec.get("audio_filepath"), str):
                rec = {**rec, "audio_filepath": str(resolve_audio(rec["audio_filepath"], base))}
                if isinstance(rec.get("f0_filepath"), str):
                    rec["f0_filepath"] = str(resolve_audio(rec["f0_filepath"], base))
                audio[str(rec["id"])] = rec
    base = corpus.absolute().parent
    out: list[UnitUtterance] = []
    unmatched = 0
    for lineno, rec in enumerate(iter_jsonl(corpus), start=1):
        rid = str(rec.get("id", ""))
        if not rid or "units" not in rec or "frame_hop_s" not in rec:
            raise ValueError(f"{corpus}:{lineno}: a unit corpus record needs 'id', 'units' and 'frame_hop_s'")
        src = audio.get(rid) if audio is not None else rec
        if src is None or not isinstance(src.get("audio_filepath"), str):
            unmatched += 1
            continue
        path = src["audio_filepath"] if audio is not None else str(resolve_audio(src["audio_filepath"], base))
        units = np.asarray(rec["units"], dtype=np.int64)
        if units.ndim != 1 or len(units) == 0:
            raise ValueError(f"{corpus}:{lineno}: 'units' must be a non-empty list of unit ids")
        offset, duration = audio_slice(src)
        speaker = src.get("speaker", rec.get("speaker"))
        f0_hz = None
        if rec.get("f0") is not None:
            f0_hz = np.asarray(rec["f0"], dtype=np.float32)
            if f0_hz.shape != units.shape:
                raise ValueError(
                    f"{corpus}:{lineno}: 'f0' has {f0_hz.shape} values for {len(units)} unit frames"
                )
        f0_file = src.get("f0_filepath", rec.get("f0_filepath"))
        f0_path = str(resolve_audio(f0_file, base)) if isinstance(f0_file, str) else None
        out.append(
            UnitUtterance(
                rid,
                path,
                units,
                float(rec["frame_hop_s"]),
                offset,
                float(duration) if duration is not None else None,
                str(speaker) if speaker is not None else None,
                f0_hz,
                f0_path,
            )
        )
    if unmatched:
        log.warning("%d utterance(s) of %s have no audio in %s: skipped", unmatched, corpus, audio_manifest)
    if not out:
        raise ValueError(f"{corpus}: no utterance with audio (check that ids match {audio_manifest})")
    hops = {round(u.frame_hop_s, 9) for u in out}
    if len(hops) > 1:
        raise ValueError(
            f"{corpus}: utterances have different frame_hop_s {sorted(hops)}; encode with one encoder"
        )
    return out


def speaker_table(utterances: tp.Sequence[UnitUtterance]) -> list[str]:
    """Sorted distinct speaker names (row order of a speaker lookup table)."""
    return sorted({u.speaker for u in utterances if u.speaker is not None})


def check_hop(cfg: VocoderConfig, frame_hop_s: float) -> int:
    """Samples per unit frame; ValueError when the generator's upsampling does not produce exactly that."""
    samples = frame_hop_s * cfg.sample_rate
    if abs(samples - round(samples)) > 1e-6 or round(samples) != cfg.hop:
        raise ValueError(
            f"unit frames of {frame_hop_s * 1000:g} ms are {samples:g} samples at {cfg.sample_rate} Hz, but "
            f"the generator upsamples each frame by {cfg.hop}: use upsample rates of product {samples:g}"
        )
    return cfg.hop


class UnitAudioDataset(torch.utils.data.Dataset):
    """Items ``{"id", "units" (n,), "f0" (n,) bins, "speaker" (), "audio" (1, n * hop), "length" ()}``.

    With ``segment_samples`` each item is a random window of ``segment_samples // hop`` frames (shorter
    utterances are zero-padded; ``length`` counts the real frames); without it, the whole utterance.
    """

    def __init__(
        self,
        utterances: tp.Sequence[UnitUtterance],
        cfg: VocoderConfig,
        segment_samples: int | None = 32000,
        f0_cache_dir: Path | None = None,
        speakers: tp.Sequence[str] | None = None,
        cache_audio: bool = False,
    ) -> None:
        if not utterances:
            raise ValueError("no utterances")
        self.utterances = list(utterances)
        self.cfg = cfg
        self.hop = check_hop(cfg, self.utterances[0].frame_hop_s)
        self.segment_frames = None if segment_samples is None else max(1, segment_samples // self.hop)
        self.f0_cache = (
            F0Cache(f0_cache_dir, cfg.pitch, cfg.sample_rate) if f0_cache_dir is not None else None
        )
        self.speakers = {name: i for i, name in enumerate(speakers or [])}
        self._audio: dict[int, np.ndarray] | None = {} if cache_audio else None

    def __len__(self) -> int:
        return len(self.utterances)

    def load_audio(self, index: int) -> np.ndarray:
        """The utterance's audio at the vocoder's rate, cut or zero-padded to ``N * hop`` samples."""
        from unitwave.audio.io import load_audio

        if self._audio is not None and index in self._audio:
            return self._audio[index]
        utt = self.utterances[index]
        wave, _ = load_audio(
            utt.audio_filepath, self.cfg.sample_rate, offset=utt.offset, duration=utt.duration
        )
        want = len(utt.units) * self.hop
        wave = wave[:want] if len(wave) >= want else np.pad(wave, (0, want - len(wave)))
        if self._audio is not None:
            self._audio[index] = wave
        return wave

    def f0_bins(self, index: int, wave: np.ndarray) -> np.ndarray:
        """``(N,)`` quantised F0 of the whole utterance: the given track, or extracted (and cached)."""
        utt = self.utterances[index]
        n = len(utt.units)
        if utt.f0_hz is not None or utt.f0_filepath is not None:
            hz = utt.f0_hz if utt.f0_hz is not None else np.load(utt.f0_filepath, allow_pickle=False)
            if hz.shape != (n,):
                raise ValueError(f"utterance {utt.id}: given F0 has shape {hz.shape}, expected ({n},)")
            return quantize_f0(hz, self.cfg.pitch)
        if self.f0_cache is not None:
            key = f"{utt.id}@{utt.offset:.6f}"
            hz = self.f0_cache.get(key, utt.audio_filepath, utt.frame_hop_s, n, lambda: wave)
        else:
            hz = unit_f0(wave, self.cfg.sample_rate, utt.frame_hop_s, n, self.cfg.pitch)
        return quantize_f0(hz, self.cfg.pitch)

    def speaker_id(self, index: int) -> int:
        name = self.utterances[index].speaker
        if not self.speakers:
            return 0
        if name not in self.speakers:
            raise ValueError(
                f"utterance {self.utterances[index].id}: speaker {name!r} is not in the speaker table"
            )
        return self.speakers[name]

    def __getitem__(self, index: int) -> dict[str, tp.Any]:
        utt = self.utterances[index]
        wave = self.load_audio(index)
        units = utt.units
        f0 = self.f0_bins(index, wave) if self.cfg.uses_f0 else np.zeros(len(units), np.int64)
        n = len(units)
        start, frames = 0, n
        if self.segment_frames is not None:
            frames = self.segment_frames
            if n > frames:
                start = int(torch.randint(0, n - frames + 1, (1,)))
        stop = min(n, start + frames)
        real = stop - start
        pad = frames - real
        seg_units = np.pad(units[start:stop], (0, pad))
        seg_f0 = np.pad(f0[start:stop], (0, pad))
        seg_wave = np.pad(wave[start * self.hop : stop * self.hop], (0, pad * self.hop))
        return {
            "id": utt.id,
            "units": torch.from_numpy(seg_units.astype(np.int64)),
            "f0": torch.from_numpy(seg_f0.astype(np.int64)),
            "speaker": torch.tensor(self.speaker_id(index), dtype=torch.long),
            "audio": torch.from_numpy(seg_wave.astype(np.float32)).unsqueeze(0),
            "length": torch.tensor(real, dtype=torch.long),
        }


def collate(items: list[dict[str, tp.Any]]) -> dict[str, tp.Any]:
    """Stack items, zero-padding to the longest.

    Returns units/f0 ``(B, N)``, audio ``(B, 1, N * hop)``, speaker/length ``(B,)`` and the ids.
    """
    n = max(int(it["units"].shape[0]) for it in items)
    hop = int(items[0]["audio"].shape[-1]) // max(1, int(items[0]["units"].shape[0]))

    def pad(t: torch.Tensor, size: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, size - t.shape[-1]))

    return {
        "id": [it["id"] for it in items],
        "units": torch.stack([pad(it["units"], n) for it in items]),
        "f0": torch.stack([pad(it["f0"], n) for it in items]),
        "speaker": torch.stack([it["speaker"] for it in items]),
        "audio": torch.stack([pad(it["audio"], n * hop) for it in items]),
        "length": torch.stack([it["length"] for it in items]),
    }
