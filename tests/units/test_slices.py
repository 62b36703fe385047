"""Records that point into a longer file (``offset`` + ``duration``, as ``unitwave segment --no-write-audio``
writes them) are fitted and encoded on their slice only, also when the slice starts at 0.0."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from unitwave.units.encode import EncodeStage
from unitwave.units.fit import FitConfig, KMeansOptions, fit
from unitwave.units.presets import EncoderOptions


def test_a_slice_at_offset_zero_is_not_the_whole_file(tmp_path):
    rng = np.random.default_rng(0)
    wav = tmp_path / "long.wav"
    sf.write(wav, (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)  # 3 s
    manifest = tmp_path / "segments.jsonl"
    records = [
        {"id": "seg0", "audio_filepath": str(wav), "offset": 0.0, "duration": 0.5},
        {"id": "seg1", "audio_filepath": str(wav), "offset": 1.0, "duration": 0.5},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    frames = 1 + (8000 - 400) // 160  # 0.5 s of 10 ms mfcc frames

    card = fit(FitConfig(manifest, tmp_path / "km", EncoderOptions(encoder="mfcc"), KMeansOptions(k=4)))
    assert card["frames_seen"] == 2 * frames and card["audio_seconds"] == 1.0

    stage = EncodeStage(tmp_path / "km", "cpu", "fp32", None, None, "all")
    stage.setup()
    out = [rows[0] for rows in stage.process(records)]
    assert [len(r["units"]) for r in out] == [frames, frames]
    assert [r["duration"] for r in out] == [0.5, 0.5]
