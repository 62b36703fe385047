"""``unitwave vocoder train`` on a tiny MFCC unit corpus: run folder, learning, export, resume, V1, pitch and
speakers, bad inputs. Configs are tiny (conftest.TINY_YAML); trainings run through the CLI entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from unitwave.cli import main
from unitwave.data.manifest import iter_jsonl
from unitwave.train import load_checkpoint
from unitwave.vocoder.inference import Vocoder


def history(run: Path) -> list[dict]:
    return json.loads((run / "training_log.json").read_text())


@pytest.fixture
def train(unit_corpus, vocoder_args):
    """``train(out, *flags)``: the tiny vocoder trained on the unit corpus through the CLI entry point."""

    def run(out: Path, *extra: str) -> Path:
        main(vocoder_args(unit_corpus, out, *extra))
        return out

    return run


def corpus_units(c) -> list[np.ndarray]:
    return [np.array(r["units"]) for r in iter_jsonl(c.corpus)]


def test_cli_run_folder_learns_and_exports_a_loadable_vocoder(trained_vocoder, unit_corpus):
    run = trained_vocoder.run
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.ckpt", "epoch_0002.ckpt", "epoch_0004.ckpt", "final.ckpt", "latest.ckpt"]
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["val_mel_loss"] < rows[0]["val_mel_loss"]  # a few CPU steps already lower the mel loss
    assert {"train_mel_loss", "train_adv_loss", "train_fm_loss", "train_d_loss", "lr", "lr_1"} <= set(rows[0])
    # --lr-g / --lr-d: one AdamW each, both decayed x0.999 per epoch
    assert rows[0]["lr"] == pytest.approx(5e-3 * 0.999) and rows[0]["lr_1"] == pytest.approx(2e-3 * 0.999)
    assert rows[-1]["lr"] == pytest.approx(5e-3 * 0.999**4)
    assert "epoch 4/4" in (run / "train.log").read_text()

    card = json.loads((run / "model" / "model_card.json").read_text())
    reference = sorted(p.name for p in (run / "samples" / "reference").rglob("*.wav"))
    assert len(reference) == min(2, card["data"]["val_utterances"]) == 2
    for epoch in ("epoch_0002", "epoch_0004"):  # samples of the same utterances at every periodic save
        names = sorted(p.name for p in (run / "samples" / epoch).rglob("*.wav"))
        assert names == reference
    ref_path = next((run / "samples" / "reference").rglob("*.wav"))
    synth_path = next(p for p in (run / "samples" / "epoch_0004").rglob("*.wav") if p.name == ref_path.name)
    ref, sr = sf.read(ref_path)
    synth, sr2 = sf.read(synth_path)
    assert sr == sr2 == 16000 and len(ref) == len(synth) and np.abs(synth).max() > 0

    best = min(rows, key=lambda r: r["val_mel_loss"])
    assert card["metrics"]["best_epoch"] == best["epoch"]
    assert card["metrics"]["val_mel_loss"] == pytest.approx(best["val_mel_loss"])
    assert card["data"]["train_utterances"] + card["data"]["val_utterances"] == 8 and card["seed"] == 0
    assert card["data"]["frame_hop_s"] == 0.02 and card["config"]["hifigan"]["num_units"] == 16
    # the exported weights are the best epoch's, and both the run folder and model/ load
    best_state = load_checkpoint(run / "checkpoints" / "best.ckpt")["state_dict"]
    voc = Vocoder.from_dir(run, layout="plain")
    loaded = Vocoder.from_dir(run / "model", layout="plain")
    assert voc.frame_hop_s == 0.02 and voc.uses_f0 and loaded.cfg == voc.cfg
    units = corpus_units(unit_corpus)[0]
    f0 = np.full(len(units), 120.0, np.float32)
    assert voc.synthesize(units, f0=f0).shape == (len(units) * 320,)
    exported = load_file(run / "model" / "generator.safetensors")
    assert exported.keys() == {k[len("generator."):] for k in best_state if k.startswith("generator.")}
    assert all(torch.equal(v, best_state["generator." + k]) for k, v in exported.items())
    with pytest.raises(ValueError, match="pitch-conditioned"):
        voc.synthesize(units)


def test_resumed_training_equals_straight_training(train, tmp_path):
    common = ("--lr", "5e-3", "--save-every", "1", "--num-samples", "1")  # samples every epoch: must not disturb
    straight = train(tmp_path / "straight", "--epochs", "3", *common)
    resumed = train(tmp_path / "resumed", "--epochs", "2", *common)
    train(resumed, "--epochs", "3", *common)  # the same folder: resumes from latest.ckpt
    a = load_checkpoint(straight / "checkpoints" / "final.ckpt")
    b = load_checkpoint(resumed / "checkpoints" / "final.ckpt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:  # generator and discriminators, bit for bit
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in history(straight)] == [
        {k: v for k, v in r.items() if k not in drop} for r in history(resumed)]
    assert sorted(p.name for p in (resumed / "samples").iterdir()) == ["epoch_0001", "epoch_0002", "epoch_0003",
                                                                       "reference"]


def test_simple_generator_trains_with_mel_and_l1_only(train, unit_corpus, tmp_path):
    run = train(tmp_path / "v1", "--vocoder.generator", "simple", "--epochs", "3", "--lr", "3e-3",
                "--save-every", "0")
    rows = history(run)
    assert {"train_mel_loss", "train_l1_loss"} <= set(rows[0]) and "train_d_loss" not in rows[0]
    assert "lr_1" not in rows[0]  # one optimiser
    assert rows[-1]["val_mel_loss"] < rows[0]["val_mel_loss"]
    assert not (run / "samples").exists()  # --save-every 0: no periodic saves, no samples
    voc = Vocoder.from_dir(run)
    assert voc.cfg.generator == "simple" and not voc.uses_f0
    assert (voc.cfg.loss.adversarial, voc.cfg.loss.feature_matching, voc.cfg.loss.waveform_l1) == (0.0, 0.0, 1.0)
    units = corpus_units(unit_corpus)[1]
    assert voc.synthesize(units).shape == (len(units) * 320,)


def test_without_pitch_and_with_a_speaker_table(train, unit_corpus, trained_vocoder, tmp_path):
    run = train(tmp_path / "spk", "--vocoder.hifigan.f0", "none", "--speakers",
                "--epochs", "1", "--save-every", "1")
    assert not list((run / "f0_cache").glob("*.npy"))  # no F0 is extracted for a model without pitch
    assert len(list((trained_vocoder.run / "f0_cache").glob("*.npy"))) == 8  # the pitch model's, once each
    voc = Vocoder.from_dir(run, layout="plain")
    speakers = sorted({r["speaker"] for r in iter_jsonl(unit_corpus.manifest)})
    assert not voc.uses_f0 and voc.speakers == speakers and voc.cfg.hifigan.num_speakers == 4
    units = corpus_units(unit_corpus)[2]
    a, b = voc.synthesize(units, speaker=speakers[0]), voc.synthesize(units, speaker=speakers[1])
    assert a.shape == (len(units) * 320,) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="unknown speaker 'nobody'"):
        voc.synthesize(units, speaker="nobody")
    pitched = Vocoder.from_dir(trained_vocoder.run, layout="plain")
    low = pitched.synthesize(units, f0=np.full(len(units), 90.0, np.float32))
    high = pitched.synthesize(units, f0=np.full(len(units), 250.0, np.float32))
    assert not np.array_equal(low, high)  # F0 conditions the output


def test_bad_inputs_are_named(unit_corpus, trained_vocoder, vocoder_args, tmp_path, fails, cli):
    proc = cli("vocoder", "train", "--units", tmp_path / "nope.jsonl", tmp_path / "o")
    assert proc.returncode == 2 and "--units" in proc.stderr and "unit corpus not found" in proc.stderr
    assert "Traceback" not in proc.stderr

    other_ids = tmp_path / "other.jsonl"
    other_ids.write_text("".join(json.dumps({**r, "id": "x" + r["id"]}) + "\n" for r in iter_jsonl(unit_corpus.manifest)))
    args = vocoder_args(unit_corpus, tmp_path / "o", "--epochs", "1")
    fails([*args, "--audio", str(other_ids)], "no utterance with audio (check that ids match")

    hop10 = tmp_path / "hop10_corpus_timestamped.jsonl"  # 10 ms frames, a generator that upsamples by 320
    hop10.write_text("".join(json.dumps({**r, "frame_hop_s": 0.01}) + "\n" for r in iter_jsonl(unit_corpus.corpus)))
    fails([*args, "--units", str(hop10)], "use upsample rates of product 160")

    fails([*args, "--val-ratio", "1.5"], "--val-ratio must be in [0, 1)")
    fails([*args, "--vocoder.hifigan.speaker", "vector", "--vocoder.hifigan.speaker-vector-dim", "4"],
               "external speaker vectors is not supported")
    # the dataset gives F0 bins and no styles: a continuous-F0 model would learn bin indices as values (and get Hz
    # at resynthesis), a style table would fail at the first step
    fails([*args, "--vocoder.hifigan.f0", "continuous"], "training with continuous F0 is not supported")
    fails([*args, "--vocoder.hifigan.num-styles", "2"], "training with style conditioning is not supported")
    assert not (tmp_path / "o").exists()

    copy = tmp_path / "copy"
    shutil.copytree(trained_vocoder.run, copy)
    fails(vocoder_args(unit_corpus, copy, "--vocoder.hifigan.f0", "none"),
               "holds a run of another model (vocoder.hifigan.f0: 'bins' -> 'none')")
    fails([*vocoder_args(unit_corpus, copy), "--val-ratio", "0.5"], "was trained on other data (val_ratio")


def test_samples_of_ids_that_look_like_paths_stay_in_the_run_folder(tmp_path):
    """Any string may be an id: an absolute one or one with '..' must not stop training at its first save."""
    from unitwave.testing.fixtures import tone
    from unitwave.vocoder.config import SimpleConfig, VocoderConfig
    from unitwave.vocoder.dataset import UnitAudioDataset, UnitUtterance
    from unitwave.vocoder.models import build_generator
    from unitwave.vocoder.training import SampleWriter

    cfg = VocoderConfig(generator="simple", simple=SimpleConfig(num_units=7, unit_dim=8, channels=16,
                                                                  upsample_rates=(4, 4)))
    sf.write(tmp_path / "a.wav", tone(0.1), 16000)
    ids = ["/data/spk/utt1", "../../escape", "spk/utt2"]
    utts = [UnitUtterance(i, str(tmp_path / "a.wav"), np.arange(50) % 7, 16 / 16000) for i in ids]
    run = tmp_path / "run"
    SampleWriter(UnitAudioDataset(utts, cfg, segment_samples=None), [0, 1, 2], None).write(
        run, 2, build_generator(cfg)
    )
    written = sorted(p.relative_to(run).as_posix() for p in tmp_path.rglob("*.wav") if p.name != "a.wav")
    assert written == sorted(
        f"samples/{folder}/{name}"
        for folder in ("reference", "epoch_0002")
        for name in ("data/spk/utt1.wav", "__/__/escape.wav", "spk/utt2.wav")
    )
