"""A deterministic synthetic speech corpus with ground truth, spoken by espeak-ng.

Each utterance is a few sentences of one speaker, with silences of known length before, between and
after them. Alongside the WAVs the corpus records what tests and benchmarks measure against:

- ``manifest.jsonl``: ``id``, ``audio_filepath`` (relative), ``duration`` (s), ``text``, ``speaker``,
  ``language``;
- ``alignments.jsonl``: ``id``, ``phones`` and ``words`` as ``[start, end, label]`` in seconds; the phones
  (IPA) cover the utterance without gaps and silence is ``"sil"``; a word label may hold two words
  where espeak speaks an unstressed word as part of its neighbour ("on the");
- ``vad.jsonl``: ``id``, ``duration``, ``speech`` (one ``[start, end]`` per sentence, from its first to its
  last non-silent sample) and ``pauses`` (the silences between consecutive sentences).

The same config gives byte-identical files on any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import tyro

from unitwave.audio.io import resample, write_wav
from unitwave.data.manifest import Record, iter_jsonl, write_manifest
from unitwave.testing.espeak import PAUSE, synthesize

Segment = tuple[float, float, str]  # (start s, end s, label)

#: Speaker presets: (label, espeak variant, pitch 0-99, pitch range 0-99, rate in words per minute).
#: Variants with echo (m2, f2-f5) are left out: their sound starts up to 50 ms before the first phone
#: event and rings on past the last one, so phone and VAD boundaries would disagree.
SPEAKER_PRESETS: tuple[tuple[str, str, int, int, int], ...] = (
    ("m1", "m1", 40, 45, 165),
    ("f1", "f1", 55, 60, 180),
    ("m3", "m3", 50, 35, 150),
    ("annie", "Annie", 45, 55, 170),
    ("m4", "m4", 60, 50, 190),
    ("m6", "m6", 35, 65, 160),
)
VOLUME = 60  # percent of espeak's default, which drives some voices to full scale
RATE_JITTER = 0.08  # each utterance's rate is the speaker's times U(1 - j, 1 + j)
SILENCE_THRESHOLD = 1e-3  # |sample| above which espeak's output counts as sound (-60 dBFS)
DURATION_DECIMALS = 4  # manifest durations in seconds, rounded to 0.1 ms
TIME_DECIMALS = 6  # interval bounds in seconds, rounded to 1 us: round(t * sample_rate) is their exact sample


@dataclass(frozen=True)
class CorpusConfig:
    """Build a deterministic synthetic speech corpus with ground truth (espeak-ng)."""

    output_dir: tyro.conf.Positional[Path]
    """Where to write the corpus."""
    utterances: int = 24
    """Number of utterances, spread round-robin over languages and speakers."""
    languages: tuple[str, ...] = ("pt-br", "en-us")
    """espeak-ng languages that have a sentence list (pt-br, en-us)."""
    speakers_per_language: int = 2
    """Distinct voices per language (espeak variants with their own pitch and rate)."""
    sentences_per_utterance: tuple[int, int] = (2, 4)
    """Inclusive range of the number of sentences in one utterance."""
    pause_seconds: tuple[float, float] = (0.3, 1.2)
    """Range of the silence inserted between sentences, in seconds (uniform)."""
    edge_silence_seconds: tuple[float, float] = (0.2, 0.6)
    """Range of the leading and of the trailing silence, in seconds (uniform)."""
    snr_db: float | None = None
    """Add white noise at this SNR in dB, relative to the power of the speech intervals; none if unset."""
    sample_rate: int = 16000
    """Sample rate of the WAVs in Hz."""
    seed: int = 0
    """Seed of every random choice: sentences, pauses, rates and noise."""

    def __post_init__(self) -> None:
        lo, hi = self.sentences_per_utterance
        if self.utterances < 1 or self.sample_rate <= 0:
            raise ValueError("utterances and sample_rate must be positive")
        if not self.languages or any(lang not in available_languages() for lang in self.languages):
            raise ValueError(f"languages must be among {available_languages()}, got {self.languages}")
        if not 1 <= self.speakers_per_language <= len(SPEAKER_PRESETS):
            raise ValueError(f"speakers_per_language must be 1..{len(SPEAKER_PRESETS)}")
        most = min(len(load_sentences(lang)) for lang in self.languages)
        if not 1 <= lo <= hi <= most:
            raise ValueError(f"sentences_per_utterance must satisfy 1 <= low <= high <= {most}, got {lo, hi}")
        for name in ("pause_seconds", "edge_silence_seconds"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {(low, high)}")


@dataclass(frozen=True)
class CorpusInfo:
    """What :func:`build_corpus` wrote."""

    root: Path
    manifest: Path
    alignments: Path
    vad: Path
    utterances: int
    total_seconds: float


@dataclass(frozen=True)
class Speaker:
    """One espeak voice with fixed prosody."""

    language: str
    label: str
    variant: str
    pitch: int  # 0-99
    pitch_range: int  # 0-99
    rate: int  # words per minute

    @property
    def id(self) -> str:
        return f"{self.language}_{self.label}"

    @property
    def voice(self) -> str:
        return f"{self.language}+{self.variant}"


@dataclass(frozen=True)
class UtterancePlan:
    """Everything random about one utterance, drawn before any audio is made."""

    id: str
    speaker: Speaker
    sentences: tuple[str, ...]
    rate: int  # words per minute
    lead_s: float
    pauses_s: tuple[float, ...]  # one fewer than sentences
    trail_s: float


@dataclass(frozen=True)
class Utterance:
    """Rendered audio and its ground truth, from the start of ``audio``."""

    audio: np.ndarray  # (T,) float32
    phones: list[Segment]  # seconds
    words: list[Segment]  # seconds
    speech: list[tuple[int, int]]  # [start, end) in samples, one per sentence


def available_languages() -> tuple[str, ...]:
    """Languages that have a sentence list in ``unitwave/testing/texts``."""
    texts = resources.files("unitwave.testing").joinpath("texts")
    return tuple(sorted(p.name.removesuffix(".txt") for p in texts.iterdir() if p.name.endswith(".txt")))


def load_sentences(language: str) -> list[str]:
    """The sentence list of a language, one sentence per non-empty line."""
    path = resources.files("unitwave.testing").joinpath("texts", f"{language}.txt")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def speakers_for(language: str, count: int) -> list[Speaker]:
    """The first ``count`` presets as speakers of ``language``."""
    return [Speaker(language, *preset) for preset in SPEAKER_PRESETS[:count]]


def plan_corpus(cfg: CorpusConfig) -> list[UtterancePlan]:
    """Draw every utterance from ``numpy.random.default_rng(cfg.seed)``, in utterance order."""
    rng = np.random.default_rng(cfg.seed)
    sentences = {lang: load_sentences(lang) for lang in cfg.languages}
    speakers = {lang: speakers_for(lang, cfg.speakers_per_language) for lang in cfg.languages}
    plans = []
    for index in range(cfg.utterances):
        language = cfg.languages[index % len(cfg.languages)]
        speaker = speakers[language][(index // len(cfg.languages)) % cfg.speakers_per_language]
        pool = sentences[language]
        count = int(rng.integers(cfg.sentences_per_utterance[0], cfg.sentences_per_utterance[1] + 1))
        chosen = rng.choice(len(pool), size=count, replace=False)
        rate = int(round(speaker.rate * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)))
        lead, trail = (float(x) for x in rng.uniform(*cfg.edge_silence_seconds, size=2))
        pauses = tuple(float(x) for x in rng.uniform(*cfg.pause_seconds, size=count - 1))
        plans.append(UtterancePlan(
            id=f"{speaker.id}_{index:04d}", speaker=speaker, sentences=tuple(pool[i] for i in chosen),
            rate=rate, lead_s=lead, pauses_s=pauses, trail_s=trail,
        ))
    return plans


def sound_bounds(audio: np.ndarray, threshold: float = SILENCE_THRESHOLD) -> tuple[int, int]:
    """``[first, last + 1)`` sample indices of ``|audio| > threshold``; ``(0, 0)`` if all silent."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, 0)


def place(segments: list[Segment], lo: float, hi: float, start: float, end: float) -> list[Segment]:
    """Cut ``segments`` to ``[lo, hi]`` s of their own timeline and move ``lo`` to ``start`` s.

    Nothing ends after ``end`` s, where the resampled span really ends: it may differ from
    ``start + hi - lo`` by a fraction of a sample.
    """
    shift = start - lo
    kept = [(s, e, label) for s, e, label in segments if e > lo and s < hi]
    return [(max(s, lo) + shift, min(e + shift, hi + shift, end), label) for s, e, label in kept]


def render(plan: UtterancePlan, sample_rate: int) -> Utterance:
    """Synthesize, trim and join the sentences of ``plan`` with its silences, at ``sample_rate`` Hz."""
    pieces: list[np.ndarray] = []
    phones: list[Segment] = []
    words: list[Segment] = []
    speech: list[tuple[int, int]] = []
    cursor = 0  # samples so far
    speaker = plan.speaker
    for sentence, gap_s in zip(plan.sentences, [plan.lead_s, *plan.pauses_s]):
        spoken = synthesize(sentence, speaker.voice, plan.rate, speaker.pitch, speaker.pitch_range, VOLUME)
        first, last = sound_bounds(spoken.audio)
        audio = resample(spoken.audio[first:last], spoken.sample_rate, sample_rate)
        gap = int(round(gap_s * sample_rate))
        speech.append((cursor + gap, cursor + gap + len(audio)))
        start, end = speech[-1][0] / sample_rate, speech[-1][1] / sample_rate
        lo, hi = first / spoken.sample_rate, last / spoken.sample_rate
        phones.append((phones[-1][1] if phones else 0.0, start, PAUSE))
        phones += place(spoken.phones, lo, hi, start, end)
        words += place(spoken.words, lo, hi, start, end)
        pieces += [np.zeros(gap, np.float32), audio]
        cursor = speech[-1][1]
    trail = int(round(plan.trail_s * sample_rate))
    pieces.append(np.zeros(trail, np.float32))
    phones.append((phones[-1][1], (cursor + trail) / sample_rate, PAUSE))
    return Utterance(np.concatenate(pieces), merge_pauses(phones), words, speech)


def merge_pauses(phones: list[Segment]) -> list[Segment]:
    """Join adjacent ``PAUSE`` segments and drop empty ones."""
    merged: list[Segment] = []
    for start, end, label in phones:
        if end <= start:
            continue
        if label == PAUSE and merged and merged[-1][2] == PAUSE:
            merged[-1] = (merged[-1][0], end, PAUSE)
        else:
            merged.append((start, end, label))
    return merged


def add_noise(
    audio: np.ndarray, speech: list[tuple[int, int]], snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """``audio`` plus white Gaussian noise ``snr_db`` dB below the power of the ``speech`` intervals.

    ``speech`` is ``[(start, end), ...]`` in samples; the noise covers the whole of ``audio``.
    """
    voiced = np.concatenate([audio[start:end] for start, end in speech])
    noise_power = float(np.mean(voiced.astype(np.float64) ** 2)) / 10 ** (snr_db / 10)
    noise = rng.standard_normal(len(audio)) * np.sqrt(noise_power)
    return (audio + noise).astype(np.float32)


def _seconds(value: float) -> float:
    return round(value, TIME_DECIMALS)


def _records(
    plan: UtterancePlan, utt: Utterance, rel_path: str, sample_rate: int
) -> tuple[Record, Record, Record]:
    """The manifest, alignment and VAD records of one utterance."""
    duration = round(len(utt.audio) / sample_rate, DURATION_DECIMALS)
    manifest = {
        "id": plan.id, "audio_filepath": rel_path, "duration": duration, "text": " ".join(plan.sentences),
        "speaker": plan.speaker.id, "language": plan.speaker.language,
    }
    alignment = {
        "id": plan.id,
        "phones": [[_seconds(s), _seconds(e), p] for s, e, p in utt.phones],
        "words": [[_seconds(s), _seconds(e), w] for s, e, w in utt.words],
    }
    speech = [[_seconds(s / sample_rate), _seconds(e / sample_rate)] for s, e in utt.speech]
    vad = {
        "id": plan.id, "duration": duration, "speech": speech,
        "pauses": [[a[1], b[0]] for a, b in zip(speech, speech[1:])],
    }
    return manifest, alignment, vad


def build_corpus(cfg: CorpusConfig) -> CorpusInfo:
    """Write WAVs under ``wavs/<language>/<speaker>/<id>.wav`` and the three JSONL files of ground truth."""
    root = Path(cfg.output_dir)
    manifest: list[Record] = []
    alignments: list[Record] = []
    vad: list[Record] = []
    total = 0.0
    for index, plan in enumerate(plan_corpus(cfg)):
        utt = render(plan, cfg.sample_rate)
        audio = utt.audio
        if cfg.snr_db is not None:
            # its own generator per utterance: a noisy corpus keeps the plan of the clean one
            audio = add_noise(audio, utt.speech, cfg.snr_db, np.random.default_rng((cfg.seed, index)))
        rel_path = f"wavs/{plan.speaker.language}/{plan.speaker.id}/{plan.id}.wav"
        write_wav(root / rel_path, audio, cfg.sample_rate)
        entry, alignment, intervals = _records(plan, utt, rel_path, cfg.sample_rate)
        manifest.append(entry)
        alignments.append(alignment)
        vad.append(intervals)
        total += len(audio) / cfg.sample_rate
    info = CorpusInfo(
        root, root / "manifest.jsonl", root / "alignments.jsonl", root / "vad.jsonl", len(manifest), total
    )
    write_manifest(info.manifest, manifest)
    write_manifest(info.alignments, alignments)
    write_manifest(info.vad, vad)
    return info


def run(cfg: CorpusConfig) -> CorpusInfo:
    """Build the corpus and say what was written where."""
    info = build_corpus(cfg)
    print(f"{info.utterances} utterances ({info.total_seconds:.1f} s) -> {info.root}: "
          f"{info.manifest.name}, {info.alignments.name}, {info.vad.name}, wavs/")
    return info


def load_alignments(path: Path) -> dict[str, list[Segment]]:
    """``alignments.jsonl`` as ``{id: [(start s, end s, phone), ...]}``."""
    return {
        r["id"]: [(float(s), float(e), str(p)) for s, e, p in r["phones"]] for r in iter_jsonl(Path(path))
    }


def load_vad(path: Path) -> dict[str, dict]:
    """``vad.jsonl`` as ``{id: {"duration": s, "speech": [(start s, end s), ...], "pauses": [...]}}``."""
    return {
        r["id"]: {
            "duration": float(r["duration"]),
            "speech": [(float(s), float(e)) for s, e in r["speech"]],
            "pauses": [(float(s), float(e)) for s, e in r["pauses"]],
        }
        for r in iter_jsonl(Path(path))
    }
