"""Shared by the vocoder training and resynthesis tests: a tiny espeak corpus, its MFCC units (made with
the real ``unitwave units`` command) and a tiny vocoder config that trains in seconds on a CPU."""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import pytest
import torch

from unitwave.testing.corpus import CorpusConfig, build_corpus

#: a HiFi-GAN of ~17k parameters: 20 ms unit frames (MFCC at 50 Hz) -> 320 samples at 16 kHz
TINY_YAML = """\
vocoder:
  hifigan: {unit_dim: 16, f0_dim: 8, speaker_dim: 8, upsample_rates: [5, 4, 4, 4], upsample_kernel_sizes: [11, 8, 8, 8],
            upsample_initial_channel: 32, resblock_kernel_sizes: [3], resblock_dilation_sizes: [[1, 3]]}
  simple: {unit_dim: 16, channels: 32}
  mel: {n_fft: 512, hop_length: 128, win_length: 512, n_mels: 40}
  mpd_periods: [2, 3]
  msd_scales: 1
  discriminator_divisor: 16
train: {batch_size: 4, progress_bar: false, precision: "32", device: cpu}
segment_length: 8000
num_samples: 2
val_ratio: 0.58  # 2 of the 8 ids fall below it (hash of the id)
"""


@dc.dataclass(frozen=True)
class UnitCorpus:
    root: Path
    manifest: Path  # the espeak corpus manifest (16 kHz WAVs under wavs/<language>/<speaker>/)
    corpus: Path  # all_corpus_timestamped.jsonl
    kmeans: Path  # the k-means folder of the units
    tiny: Path  # TINY_YAML


@pytest.fixture(autouse=True)
def one_torch_thread() -> tp.Iterator[None]:
    """One intra-op thread: on a small shared CPU, more threads only spin against other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def unit_corpus(tmp_path_factory: pytest.TempPathFactory) -> UnitCorpus:
    """8 one-sentence utterances (~2.4 s each, 2 languages x 2 speakers) and their k=16 MFCC units, made by
    the real ``unitwave units`` command (in this process: its CLI entry point)."""
    from unitwave.cli import main

    root = tmp_path_factory.mktemp("vocoder-corpus")
    info = build_corpus(CorpusConfig(root / "corpus", utterances=8, sentences_per_utterance=(1, 1),
                                     pause_seconds=(0.2, 0.3), edge_silence_seconds=(0.1, 0.2)))
    main(["units", str(info.manifest), str(root / "units"), "--encoder", "mfcc", "--frame-rate", "50", "--k", "16",
          "--workers", "1"])
    tiny = root / "tiny.yaml"
    tiny.write_text(TINY_YAML, encoding="utf-8")
    units = root / "units" / "all"
    return UnitCorpus(root, info.manifest, units / "all_corpus_timestamped.jsonl", units / "kmeans", tiny)


@dc.dataclass(frozen=True)
class TrainedVocoder:
    run: Path  # the run folder of `unitwave vocoder train`
    args: tuple[str, ...]  # the command line that trained it (after `unitwave`)


def train_args(c: UnitCorpus, out: Path, *extra: str) -> list[str]:
    """``vocoder train`` arguments for the tiny config on the unit corpus."""
    return ["vocoder", "train", "--config", str(c.tiny), "--units", str(c.corpus), "--audio", str(c.manifest), str(out),
            *extra]


@pytest.fixture
def vocoder_args() -> tp.Callable[..., list[str]]:
    """:func:`train_args` for tests (helpers reach tests as fixtures: test folders are not packages)."""
    return train_args


@pytest.fixture
def fails(capsys: pytest.CaptureFixture[str]) -> tp.Callable[[list[str], str], None]:
    """``fails(args, message)``: ``unitwave ARGS`` (in this process) exits 2 with ``message``, no traceback."""
    from unitwave.cli import main

    def check(args: list[str], message: str) -> None:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err, err

    return check


@pytest.fixture(scope="session")
def trained_vocoder(unit_corpus: UnitCorpus, tmp_path_factory: pytest.TempPathFactory) -> TrainedVocoder:
    """The tiny pitch-conditioned HiFi-GAN, 4 epochs through the CLI entry point (two learning rates)."""
    from unitwave.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("vocoder") / "run"
    args = train_args(unit_corpus, out, "--epochs", "4", "--save-every", "2", "--lr-g", "5e-3", "--lr-d", "2e-3")
    try:
        main(args)
    finally:
        torch.set_num_threads(threads)
    return TrainedVocoder(out, tuple(args))
