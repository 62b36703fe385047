"""Encoders: waveforms in, frame features ``(T, D)`` out, batched without changing results.

Every encoder has a *frontend* (per utterance, on CPU) that turns a waveform into input steps
``(L, C)``: samples for waveform models and signal features, stacked fbank frames for w2v-BERT. Its
frame ``t`` covers input steps ``[t * step_hop, t * step_hop + step_field)``, so long inputs can be cut
into chunks whose frame grids line up with the whole: each chunk keeps the frames of its core and
sees ``context`` frames more on both sides; the kept frames are stitched in order, and the frame count
and timing equal those of the unchunked input exactly (signal features: the values too).

Encoders are chosen by ``EncoderSpec.kind`` from :data:`ENCODERS`, a plain dict.
"""

from __future__ import annotations

import abc
import dataclasses as dc
import math
import typing as tp

import numpy as np

from unitwave.units.presets import EncoderSpec

if tp.TYPE_CHECKING:
    import torch


@dc.dataclass(frozen=True)
class Chunk:
    """One piece of a long input: input steps ``[start, end)``; its local frames ``[keep_from, keep_to)``
    are global frames ``first_frame + (local - keep_from)``."""

    start: int
    end: int
    keep_from: int
    keep_to: int
    first_frame: int


def plan_chunks(
    steps: int,
    hop: int,
    field: int,
    chunk_frames: int,
    context_frames: int,
    count: tp.Callable[[int], int],
) -> list[Chunk]:
    """Cut ``steps`` input steps into chunks of ``chunk_frames`` kept frames plus context.

    ``count(n)`` is the encoder's frame count for ``n`` input steps. Chunk starts are multiples of
    ``hop``, so every chunk's frames fall on the global frame grid.
    """
    total = count(steps)
    if total <= chunk_frames + 2 * context_frames:
        return [Chunk(0, steps, 0, total, 0)]
    chunks = []
    for first in range(0, total, chunk_frames):
        last = min(total, first + chunk_frames)  # exclusive
        lo = max(0, first - context_frames)
        hi = min(total, last + context_frames)
        start, end = lo * hop, min(steps, (hi - 1) * hop + field)
        chunks.append(Chunk(start, end, first - lo, last - lo, first))
    return chunks


class Encoder(abc.ABC):
    """Waveforms ``(N,)`` float32 at ``spec.sample_rate`` -> features ``(T, D)`` per utterance.

    Subclasses set ``spec`` (with the true frame geometry), ``dim``, ``step_hop``, ``step_field``,
    ``context_frames`` and ``batchable``, and implement :meth:`frontend` and :meth:`forward_batch`.
    """

    spec: EncoderSpec
    dim: int
    device: torch.device
    step_hop: int  # input steps between frames
    step_field: int  # input steps one frame sees
    samples_per_step: int = 1
    context_frames: int = 0
    #: padded batches give each item the features it gets alone (else only equal lengths are batched)
    batchable: bool = True

    @abc.abstractmethod
    def frontend(self, wave: np.ndarray) -> torch.Tensor:
        """One waveform ``(N,)`` -> input steps ``(L, C)`` on CPU (normalisation, fbank...)."""

    @abc.abstractmethod
    def forward_batch(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Input steps ``[(L_i, C)]`` -> features ``[(count(L_i), D)]`` on ``self.device``, float32."""

    def count(self, steps: int) -> int:
        """Frames for ``steps`` input steps: ``1 + (L - field) // hop`` (0 when too short)."""
        return 0 if steps < self.step_field else 1 + (steps - self.step_field) // self.step_hop

    def num_frames(self, n_samples: int) -> int:
        """Frames an ``n_samples`` waveform gives (without running the model)."""
        if self.spec.frame_hop <= 0:
            return 0
        return (
            0
            if n_samples < self.spec.receptive_field
            else 1 + (n_samples - self.spec.receptive_field) // self.spec.frame_hop
        )

    def features(self, waves: tp.Sequence[np.ndarray], max_batch_seconds: float = 60.0) -> list[torch.Tensor]:
        """Features ``(T_i, D)`` float32 on ``self.device`` for each waveform; ``T_i = num_frames(N_i)``.

        Long inputs are chunked (see module doc); pieces are run in length-sorted batches of at most
        ``max_batch_seconds`` padded audio seconds (only equal-length pieces together when the encoder
        is not :attr:`batchable`). Waveforms shorter than one receptive field give ``(0, D)``.
        """
        import torch

        spec = self.spec
        chunk_frames = max(1, round(spec.chunk_seconds * spec.sample_rate / spec.frame_hop))
        pieces: list[tuple[int, Chunk, torch.Tensor]] = []
        totals: list[int] = []
        for i, wave in enumerate(waves):
            x = self.frontend(np.asarray(wave, dtype=np.float32).reshape(-1))
            plan = plan_chunks(
                x.shape[0], self.step_hop, self.step_field, chunk_frames, self.context_frames, self.count
            )
            totals.append(self.count(x.shape[0]))
            pieces.extend((i, c, x[c.start : c.end]) for c in plan if c.keep_to > c.keep_from)
        cap_steps = max_batch_seconds * spec.sample_rate / self.samples_per_step
        outputs: dict[int, list[tuple[int, torch.Tensor]]] = {i: [] for i in range(len(waves))}
        for group in _length_batches(pieces, cap_steps, self.batchable):
            feats = self.forward_batch([p[2] for p in group])
            for (i, chunk, _), f in zip(group, feats):
                if f.shape[0] < chunk.keep_to:
                    raise RuntimeError(
                        f"{type(self).__name__}: {f.shape[0]} frames for a chunk that needs {chunk.keep_to}"
                    )
                outputs[i].append((chunk.first_frame, f[chunk.keep_from : chunk.keep_to]))
        result = []
        for i in range(len(waves)):
            parts = [f for _, f in sorted(outputs[i], key=lambda p: p[0])]
            out = torch.cat(parts) if parts else torch.zeros((0, self.dim), device=self.device)
            if out.shape[0] != totals[i]:
                raise RuntimeError(
                    f"{type(self).__name__}: stitched {out.shape[0]} frames, expected {totals[i]}"
                )
            result.append(out)
        return result


def _length_batches(pieces: list[tp.Any], cap_steps: float, batchable: bool) -> list[list[tp.Any]]:
    """Group ``(i, chunk, x)`` pieces, longest first, so that ``longest * count <= cap_steps``."""
    ordered = sorted(pieces, key=lambda p: -p[2].shape[0])
    groups: list[list[tp.Any]] = []
    for piece in ordered:
        length = piece[2].shape[0]
        if groups:
            group = groups[-1]
            longest = group[0][2].shape[0]
            same = not batchable and length == longest
            if (batchable or same) and longest * (len(group) + 1) <= max(cap_steps, longest):
                group.append(piece)
                continue
        groups.append([piece])
    return groups


class SignalEncoder(Encoder):
    """``mfcc`` (39-d: 13 MFCC + deltas + delta-deltas) or ``logmel`` (Kaldi log-mel): no weights needed.

    Kaldi framing: 25 ms windows every ``spec.frame_hop`` samples (10 ms at 100 Hz, 20 ms at 50 Hz).
    """

    def __init__(self, spec: EncoderSpec, device: str = "auto") -> None:
        import torch

        if spec.kind not in ("mfcc", "logmel"):
            raise ValueError(f"SignalEncoder does not make {spec.kind!r} features")
        self.spec = spec
        self.device = torch.device(resolve_device(device))
        self.dim = 39 if spec.kind == "mfcc" else spec.n_mels
        self.step_hop, self.step_field = spec.frame_hop, spec.receptive_field
        self.context_frames = 4 if spec.kind == "mfcc" else 0  # deltas of deltas reach 4 frames away
        self.batchable = True  # each item is computed alone

    def frontend(self, wave: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(wave)[:, None]

    def forward_batch(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        from unitwave.audio.features import kaldi_log_mel, mfcc_with_deltas

        shift = self.spec.frame_hop / self.spec.sample_rate
        out = []
        for x in inputs:  # one utterance at a time: deltas replicate each utterance's edges
            if self.spec.kind == "mfcc":
                f = mfcc_with_deltas(x[:, 0], self.spec.sample_rate, frame_shift_s=shift)
            else:
                f = kaldi_log_mel(
                    x[:, 0], self.spec.sample_rate, n_mels=self.spec.n_mels, frame_shift_s=shift
                )
            out.append(f.to(self.device))
        return out


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other names pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _build_signal(spec: EncoderSpec, device: str, precision: str) -> Encoder:
    return SignalEncoder(spec, device)


def _build_ssl(spec: EncoderSpec, device: str, precision: str) -> Encoder:
    from unitwave.units.ssl import TransformersEncoder

    return TransformersEncoder(spec, device, precision)


#: encoder kind -> builder (a plain dict: a new kind is one entry)
ENCODERS: dict[str, tp.Callable[[EncoderSpec, str, str], Encoder]] = {
    "mfcc": _build_signal,
    "logmel": _build_signal,
    "transformers": _build_ssl,
    "fairseq": _build_ssl,
}


def build_encoder(spec: EncoderSpec, device: str = "auto", precision: str = "fp32") -> Encoder:
    """The encoder ``spec`` describes; its ``.spec`` carries the frame geometry read from the model."""
    builder = ENCODERS.get(spec.kind)
    if builder is None:
        raise ValueError(f"unknown encoder kind {spec.kind!r}; known: {', '.join(ENCODERS)}")
    return builder(spec, device, precision)


def context_frames_for(spec: EncoderSpec) -> int:
    """Frames of context each SSL chunk sees on both sides (``context_seconds`` rounded up)."""
    return math.ceil(spec.context_seconds * spec.sample_rate / max(spec.frame_hop, 1))
