"""Batched inference: ``Vocoder.from_dir(voc_dir).synthesize(units, f0=None, speaker=None)``.

Needs only torch and numpy. The folder is a unitwave model folder (``model_card.json`` +
``generator.safetensors``) or a legacy fairseq/textlesslib one (``config.json`` + ``g_XXXXXXXX``).
Weight norm is folded away, utterances are sorted by length and run in padded batches whose every
item gives exactly what it gives alone (see :mod:`unitwave.vocoder.hifigan`). Utterances longer than
``max_chunk_s`` (30 s) run as chunks with the generator's receptive field as context on both sides: the same
audio, with memory bounded (5 min of audio, V2 on CPU: 3.0 GB peak in one pass, 1.3 GB in 30 s chunks).
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unitwave.vocoder.config import VocoderConfig
from unitwave.vocoder.pitch import quantize_f0, unit_f0

ArrayLike = np.ndarray | tp.Sequence[int] | tp.Sequence[float] | torch.Tensor
Speaker = int | str | np.ndarray | tp.Sequence[float] | None
Layout = tp.Literal["auto", "channels_last", "plain"]


def _as_array(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class Vocoder:
    """A generator ready for inference, with what its model card says about rates and tables."""

    def __init__(
        self,
        generator: nn.Module,
        cfg: VocoderConfig,
        card: dict[str, tp.Any],
        device: str = "cpu",
        layout: Layout = "auto",
    ) -> None:
        """``generator`` must have its weight norm removed (``load_vocoder``/``load_legacy`` do it).

        ``layout``: "channels_last" runs the decoder as channels-last 2-D convolutions (faster on CPU,
        see :mod:`unitwave.vocoder.fast`), "plain" as 1-D ones; "auto" picks channels-last on CPU.
        """
        from unitwave.vocoder.fast import to_channels_last

        self.cfg = cfg
        self.card = card
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        if layout == "channels_last" or (layout == "auto" and self.device.type == "cpu"):
            to_channels_last(self.generator)
        self.speakers: list[str] | None = card.get("speakers")
        self.styles: list[str] | None = card.get("styles")

    @classmethod
    def from_dir(cls, voc_dir: str | Path, device: str = "cpu", layout: Layout = "auto") -> Vocoder:
        """Load a unitwave vocoder folder (or the run folder of ``unitwave vocoder train``, whose ``model/``
        it is), or a legacy one (``config.json`` + checkpoint)."""
        from unitwave.vocoder.legacy import load_legacy
        from unitwave.vocoder.models import load_vocoder

        kind, files = cls.model_files(voc_dir)
        if kind == "unitwave":
            return cls(*load_vocoder(files[0].parent), device=device, layout=layout)
        return cls(*load_legacy(*files), device=device, layout=layout)

    @staticmethod
    def model_files(voc_dir: str | Path) -> tuple[str, list[Path]]:
        """``("unitwave", [card, weights])`` or ``("legacy", [checkpoint, config.json])``: the files that
        define the vocoder in ``voc_dir`` (a model folder, a ``vocoder train`` run folder whose ``model/`` it
        is, or a legacy folder); what identifies the model, unlike a run folder's logs. FileNotFoundError
        when there is none."""
        from unitwave.vocoder.legacy import find_legacy_files
        from unitwave.vocoder.models import CARD, WEIGHTS

        voc_dir = Path(voc_dir)
        if not (voc_dir / CARD).is_file() and (voc_dir / "model" / CARD).is_file():
            voc_dir = voc_dir / "model"
        if (voc_dir / CARD).is_file():
            return "unitwave", [voc_dir / CARD, voc_dir / WEIGHTS]
        found = find_legacy_files(voc_dir) if voc_dir.is_dir() else None
        if found is None:
            raise FileNotFoundError(
                f"{voc_dir}: no vocoder here (expected {CARD} + {WEIGHTS}, or a legacy config.json + "
                "g_XXXXXXXX checkpoint)"
            )
        return "legacy", list(found)

    @classmethod
    def from_generator(
        cls,
        generator: nn.Module,
        cfg: VocoderConfig,
        card: dict[str, tp.Any] | None = None,
        layout: Layout = "auto",
    ) -> Vocoder:
        """An inference copy of a generator being trained (validation samples): deep-copied, weight norm
        folded, on the generator's device; the original keeps its weight norm and its train/eval mode."""
        import copy

        from unitwave.vocoder.hifigan import remove_weight_norm

        device = next(generator.parameters()).device
        copied = remove_weight_norm(copy.deepcopy(generator))
        return cls(copied, cfg, card or {"frame_hop_s": cfg.hop / cfg.sample_rate}, str(device), layout)

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def hop_samples(self) -> int:
        """Output samples per conditioning frame."""
        return self.cfg.hop

    @property
    def frame_hop_s(self) -> float:
        """Seconds per unit frame the vocoder was trained on."""
        return float(self.card.get("frame_hop_s") or self.cfg.hop / self.cfg.sample_rate)

    @property
    def uses_f0(self) -> bool:
        return self.cfg.uses_f0

    @property
    def num_units(self) -> int:
        """Unit ids the generator's embedding table has rows for."""
        return self.cfg.hifigan.num_units if self.cfg.generator == "hifigan" else self.cfg.simple.num_units

    def f0_from_audio(self, audio: np.ndarray, sample_rate: int, num_frames: int) -> np.ndarray:
        """F0 in Hz of ``(T,)`` audio on ``num_frames`` unit frames, as this vocoder was trained on."""
        return unit_f0(audio, sample_rate, self.frame_hop_s, num_frames, self.cfg.pitch)

    def _f0_input(self, f0: ArrayLike, frames: int, index: int) -> np.ndarray:
        arr = _as_array(f0)
        per_frame = self.card.get("f0_per_frame")  # known for vocoders unitwave trained (1)
        if arr.ndim != 1 or len(arr) == 0 or len(arr) % frames or (per_frame and len(arr) != per_frame * frames):
            need = f"{per_frame} per unit frame" if per_frame else "one value (or r) per unit frame"
            raise ValueError(f"utterance {index}: F0 has shape {arr.shape}; this vocoder needs {need} ({frames} frames)")
        mode = self.cfg.hifigan.f0
        if mode == "continuous":
            return arr.astype(np.float32)
        if np.issubdtype(arr.dtype, np.integer):
            bins = arr.astype(np.int64)
        elif self.cfg.pitch.quantizer == "external":
            raise ValueError(
                "this vocoder's F0 quantiser is not known to unitwave (imported checkpoint): pass F0 as "
                "integer bin indices"
            )
        else:
            bins = quantize_f0(arr, self.cfg.pitch)
        if bins.min() < 0 or bins.max() >= self.cfg.hifigan.f0_bins:
            hint = " (integer F0 is read as bin indices: pass F0 in Hz as floats)" if np.issubdtype(arr.dtype, np.integer) else ""
            raise ValueError(f"utterance {index}: F0 bins must lie in [0, {self.cfg.hifigan.f0_bins}){hint}")
        return bins

    def speaker_id(self, speaker: int | str) -> int:
        """Row of the speaker table: a name from the model card, or an id (``3`` or ``"3"``: legacy
        checkpoints come without names). ValueError naming the known speakers otherwise."""
        count = self.cfg.hifigan.num_speakers if self.cfg.speaker_mode == "lookup" else 0
        if isinstance(speaker, str) and speaker in (self.speakers or []):
            return (self.speakers or []).index(speaker)
        if isinstance(speaker, (int, np.integer)) or (isinstance(speaker, str) and speaker.isdigit()):
            sid = int(speaker)
            if not 0 <= sid < count:
                raise ValueError(f"speaker id {sid} out of range [0, {count})")
            return sid
        known = ", ".join((self.speakers or [])[:10])
        raise ValueError(
            f"unknown speaker {speaker!r}; known: {known or f'(no names in the model card: ids 0-{count - 1})'}"
        )

    def _speaker_input(self, speaker: Speaker, index: int) -> np.ndarray:
        mode = self.cfg.speaker_mode
        if mode == "none":
            return np.zeros(1, np.int64)
        if speaker is None:
            raise ValueError(f"utterance {index}: this vocoder needs a speaker ({mode})")
        if mode == "lookup":
            return np.array([self.speaker_id(tp.cast(int | str, speaker))], np.int64)
        vec = np.asarray(speaker, dtype=np.float32).reshape(-1)
        if vec.shape != (self.cfg.hifigan.speaker_vector_dim,):
            raise ValueError(
                f"speaker vector must have {self.cfg.hifigan.speaker_vector_dim} values, got {vec.shape}"
            )
        return vec

    @torch.inference_mode()
    def synthesize(
        self,
        units: ArrayLike | tp.Sequence[ArrayLike],
        f0: ArrayLike | tp.Sequence[ArrayLike] | None = None,
        speaker: Speaker | tp.Sequence[Speaker] = None,
        style: int | tp.Sequence[int] | None = None,
        batch_size: int | None = None,
        max_padding: float = 0.2,
        predict_durations: bool = False,
        max_chunk_s: float | None = 30.0,
    ) -> np.ndarray | list[np.ndarray]:
        """Waveforms (float32 in [-1, 1] at :attr:`sample_rate`) for unit sequences.

        Args:
            units: one ``(N,)`` unit sequence, or a list of them.
            f0: per utterance, ``(N,)`` Hz (0 = unvoiced; quantised here) or integer bins, or ``(N * r,)``
                for vocoders whose F0 runs ``r`` times faster; required when the vocoder is pitch-conditioned.
            speaker: per utterance (or one for all): lookup id, name from the card, or external vector.
            style: per utterance (or one for all) style id, for vocoders with a style table.
            batch_size: most utterances per forward pass; None: 1 on CPU (batching only adds padding and
                mask work there, see benchmarks/vocoder_rtf.py), 8 on a GPU.
            max_padding: a batch grows only while its padded frames stay within this fraction of its real
                frames (utterances are sorted by length first).
            predict_durations: units are deduplicated; the vocoder's duration predictor (legacy
                speech-to-speech vocoders) repeats each one. One utterance per pass; no F0; no chunks.
            max_chunk_s: longer utterances are synthesized in chunks of this many seconds, each with the
                generator's receptive field as context on both sides, so memory stays bounded while the
                audio is the same as in one pass (to float rounding). None: always one pass.

        Returns:
            ``(N * r * hop,)`` samples per utterance: one array for one sequence, else a list.
        """
        if isinstance(units, (np.ndarray, torch.Tensor)) and units.ndim == 2:
            units = list(units)  # (B, N): B sequences of N frames
        single = not isinstance(units, (list, tuple)) or (len(units) > 0 and np.isscalar(units[0]))
        raw = [_as_array(units)] if single else [_as_array(u) for u in units]
        for i, r in enumerate(raw):
            if r.size and not np.issubdtype(r.dtype, np.integer) and not np.array_equal(r, np.round(r)):
                raise ValueError(f"utterance {i}: unit ids must be integers, got values such as {r.flat[0]!r}")
        seqs = [r.astype(np.int64) for r in raw]
        n = len(seqs)
        f0s = [f0] if single and f0 is not None else (list(f0) if f0 is not None else [None] * n)
        per_speaker = (
            not single
            and isinstance(speaker, (list, tuple))
            and len(speaker) == n
            and not (self.cfg.speaker_mode == "vector" and np.isscalar(speaker[0]))
        )
        speakers = list(speaker) if per_speaker else [speaker] * n
        styles = list(style) if isinstance(style, (list, tuple)) else [style] * n
        if len(f0s) != n:
            raise ValueError(f"got {len(f0s)} F0 tracks for {n} unit sequences")
        for i, s in enumerate(seqs):
            if s.ndim != 1 or len(s) == 0:
                raise ValueError(
                    f"utterance {i}: units must be a non-empty 1-D sequence, got shape {s.shape}"
                )
            if s.min() < 0 or s.max() >= self.num_units:
                raise ValueError(f"utterance {i}: unit ids must lie in [0, {self.num_units})")
        if self.uses_f0 and any(x is None for x in f0s):
            raise ValueError("this vocoder is pitch-conditioned: pass f0 (Hz or bins) for every utterance")
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else 8
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_chunk_s is not None and max_chunk_s <= 0:
            raise ValueError(f"max_chunk_s must be > 0 seconds (or None: one pass), got {max_chunk_s}")
        if self.cfg.speaker_mode == "none" and any(s is not None for s in speakers):
            raise ValueError("this vocoder has no speaker conditioning: leave speaker out")
        if predict_durations:
            if getattr(self.generator, "dur_predictor", None) is None:
                raise ValueError("this vocoder has no duration predictor; pass frame-level units")
            if self.uses_f0:
                raise ValueError(
                    "duration prediction with F0 conditioning is not supported (F0 is frame-level)"
                )
            batch_size = 1
        f0_inputs = [self._f0_input(f0s[i], len(s), i) if self.uses_f0 else None for i, s in enumerate(seqs)]
        speaker_inputs = [self._speaker_input(speakers[i], i) for i in range(n)]
        context = getattr(self.generator, "context_frames", None)
        chunk = None
        if max_chunk_s is not None and context is not None and not predict_durations:
            chunk = max(1, round(max_chunk_s / self.frame_hop_s))
        pieces = [(i, w) for i, s in enumerate(seqs) for w in chunk_windows(len(s), chunk, context or 0)]
        parts: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n)]
        for batch in length_buckets([w.end - w.start for _, w in pieces], batch_size, max_padding):
            todo = [pieces[j] for j in batch]
            waves = self._run_batch(
                [seqs[i][w.start : w.end] for i, w in todo],
                [None if f0_inputs[i] is None else w.slice_rate(f0_inputs[i], len(seqs[i])) for i, w in todo],
                [speaker_inputs[i] for i, _ in todo],
                [styles[i] for i, _ in todo],
                predict_durations,
            )
            for (i, w), wave in zip(todo, waves):
                parts[i].append((w.keep_from, w.keep(wave)))
        results = [np.concatenate([wave for _, wave in sorted(ps, key=lambda t: t[0])]) for ps in parts]
        return results[0] if single else results

    def _run_batch(
        self,
        seqs: list[np.ndarray],
        f0s: list[np.ndarray | None],
        speakers: list[np.ndarray],
        styles: list[tp.Any],
        predict_durations: bool = False,
    ) -> list[np.ndarray]:
        b, longest = len(seqs), max(len(s) for s in seqs)
        dev = self.device
        units = torch.zeros(b, longest, dtype=torch.long)
        for i, s in enumerate(seqs):
            units[i, : len(s)] = torch.from_numpy(s)
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        ratio = 1
        f0 = None
        if f0s[0] is not None:
            ratio = len(f0s[0]) // len(seqs[0])
            if any(len(x) != ratio * len(s) for x, s in zip(f0s, seqs)):  # type: ignore[arg-type]
                raise ValueError("all F0 tracks of a batch must run at the same multiple of the unit rate")
            f0 = torch.zeros(
                b, longest * ratio, dtype=torch.long if f0s[0].dtype == np.int64 else torch.float32
            )
            for i, x in enumerate(f0s):
                f0[i, : len(x)] = torch.from_numpy(x)  # type: ignore[arg-type]
            f0 = f0.to(dev)
        speaker = None
        if self.cfg.speaker_mode != "none":
            speaker = torch.from_numpy(np.stack(speakers)).to(dev)
            speaker = speaker.view(-1) if self.cfg.speaker_mode == "lookup" else speaker
        style = None
        if self.cfg.generator == "hifigan" and self.cfg.hifigan.num_styles > 0:
            if any(s is None for s in styles):
                raise ValueError("this vocoder needs a style id per utterance")
            style = torch.tensor([int(s) for s in styles], dtype=torch.long, device=dev)
        if predict_durations:
            gen = self.generator
            wave = gen.decode(gen.condition(units.to(dev), None, speaker, style, predict_durations=True))
            return [wave.reshape(-1).float().cpu().numpy()]
        mask_lengths = lengths.to(dev) if b > 1 else None
        wave = self.generator(units.to(dev), f0, speaker, style, lengths=mask_lengths)
        wave = wave.squeeze(1).float().cpu().numpy()
        hop = wave.shape[-1] // (longest * ratio)
        return [wave[i, : len(s) * ratio * hop].copy() for i, s in enumerate(seqs)]


class Window(tp.NamedTuple):
    """Frames ``[start, end)`` of an utterance are run; the audio of frames ``[keep_from, keep_to)`` is kept."""

    start: int
    end: int
    keep_from: int
    keep_to: int

    def slice_rate(self, track: np.ndarray, frames: int) -> np.ndarray:
        """This window of a track running ``len(track) / frames`` times faster than the unit frames."""
        r = len(track) // frames
        return track[self.start * r : self.end * r]

    def keep(self, wave: np.ndarray) -> np.ndarray:
        """The kept part of this window's ``(T,)`` audio (all of it for a whole utterance, whose length need
        not be a multiple of its frames when durations are predicted)."""
        if (self.start, self.end) == (self.keep_from, self.keep_to):
            return wave
        per_frame = len(wave) // (self.end - self.start)
        return wave[(self.keep_from - self.start) * per_frame : (self.keep_to - self.start) * per_frame]


def chunk_windows(frames: int, chunk: int | None, context: int) -> list[Window]:
    """Windows covering ``frames`` unit frames: kept ranges of ``chunk`` frames tile ``[0, frames)``, each
    run with ``context`` more frames on both sides (where the utterance has them). One window when
    ``chunk`` is None or the utterance fits."""
    if chunk is None or frames <= chunk:
        return [Window(0, frames, 0, frames)]
    return [
        Window(max(0, a - context), min(frames, a + chunk + context), a, min(frames, a + chunk))
        for a in range(0, frames, chunk)
    ]


def length_buckets(lengths: tp.Sequence[int], batch_size: int, max_padding: float = 0.2) -> list[list[int]]:
    """Indices grouped longest first into batches of at most ``batch_size`` whose padding (frames added to
    reach the batch's longest item) stays within ``max_padding`` of their real frames."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        if batch is not None and len(batch) < max(1, batch_size):
            longest = lengths[batch[0]]
            real = sum(lengths[j] for j in batch) + lengths[i]
            if longest * (len(batch) + 1) <= (1.0 + max_padding) * real:
                batch.append(i)
                continue
        batches.append([i])
    return batches
