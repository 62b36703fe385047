"""Generators, discriminators, losses, weight norm, batching and model folders (tiny CPU configs)."""

from __future__ import annotations

import copy
import dataclasses as dc
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unitwave.vocoder.config import HifiganConfig, LossWeights, MelConfig, SimpleConfig, VocoderConfig
from unitwave.vocoder.hifigan import has_weight_norm, remove_weight_norm
from unitwave.vocoder.inference import Vocoder
from unitwave.vocoder.losses import VocoderObjective
from unitwave.vocoder.models import GENERATORS, build_generator, load_vocoder, save_vocoder

TINY = HifiganConfig(
    num_units=20,
    unit_dim=16,
    f0="bins",
    f0_bins=33,
    f0_dim=8,
    upsample_rates=(4, 4),
    upsample_kernel_sizes=(8, 8),
    upsample_initial_channel=32,
    resblock_kernel_sizes=(3, 5),
    resblock_dilation_sizes=((1, 3), (1, 3)),
)
TINY_MEL = MelConfig(n_fft=256, hop_length=64, win_length=256, n_mels=32)


def tiny(**hifigan: object) -> VocoderConfig:
    return VocoderConfig(
        hifigan=dc.replace(TINY, **hifigan),
        mel=TINY_MEL,
        mpd_periods=(2, 3),
        msd_scales=2,
        discriminator_divisor=8,
    )


def perturb_weight_norm_gains(module: torch.nn.Module) -> None:
    """Make g differ from |v| so that folding weight norm is a real computation."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.rand_like(p) + 0.5)


@pytest.mark.parametrize("rates,kernels", [((4, 4), (8, 8)), ((5, 4, 4, 2, 2), (11, 8, 8, 4, 4))])
def test_output_length_is_frames_times_hop(rates, kernels):
    cfg = tiny(upsample_rates=rates, upsample_kernel_sizes=kernels)
    gen = build_generator(cfg).eval()
    units = torch.randint(0, 20, (2, 7))
    with torch.no_grad():
        wave = gen(units, torch.randint(0, 33, (2, 7)))
    assert cfg.hop == int(np.prod(rates))
    assert wave.shape == (2, 1, 7 * cfg.hop)
    assert wave.abs().max() <= 1.0


def test_simple_generator_is_registered_and_upsamples_by_its_hop():
    cfg = VocoderConfig(
        generator="simple",
        simple=SimpleConfig(num_units=20, unit_dim=16, channels=32, upsample_rates=(5, 4, 4, 4)),
    )
    assert set(GENERATORS) == {"hifigan", "simple"}
    gen = build_generator(cfg).eval()
    with torch.no_grad():
        wave = gen(torch.randint(0, 20, (3, 9)))
    assert cfg.hop == 320 and wave.shape == (3, 1, 9 * 320)


def test_pitch_conditioning_changes_the_output_and_is_required():
    torch.manual_seed(0)
    gen = build_generator(tiny()).eval()
    units = torch.randint(0, 20, (1, 12))
    with torch.no_grad():
        low = gen(units, torch.full((1, 12), 3))
        high = gen(units, torch.full((1, 12), 30))
    assert (low - high).abs().max() > 1e-6  # N(0, 0.01) init: small but real
    with pytest.raises(ValueError, match="pitch-conditioned"):
        gen(units)
    plain = build_generator(tiny(f0="none")).eval()
    with torch.no_grad():
        a, b = plain(units, torch.full((1, 12), 3)), plain(units, torch.full((1, 12), 30))
    assert torch.equal(a, b)  # F0 is ignored without pitch conditioning
    assert plain.conv_pre.parametrizations.weight.original1.shape[1] == 16
    assert gen.conv_pre.parametrizations.weight.original1.shape[1] == 16 + 8


def test_faster_f0_stream_repeats_the_units():
    gen = build_generator(tiny()).eval()
    with torch.no_grad():
        wave = gen(torch.randint(0, 20, (1, 5)), torch.randint(0, 33, (1, 20)))
    assert wave.shape[-1] == 20 * 16
    with pytest.raises(ValueError, match="integer multiples"):
        gen(torch.randint(0, 20, (1, 5)), torch.randint(0, 33, (1, 7)))


def test_speaker_lookup_and_external_vector():
    torch.manual_seed(0)
    lookup = build_generator(tiny(speaker="lookup", num_speakers=3, speaker_dim=8)).eval()
    vector = build_generator(tiny(speaker="vector", speaker_vector_dim=6, speaker_dim=8)).eval()
    units, f0 = torch.randint(0, 20, (2, 6)), torch.randint(0, 33, (2, 6))
    with torch.no_grad():
        a = lookup(units, f0, torch.tensor([0, 2]))
        b = lookup(units, f0, torch.tensor([1, 2]))
        c = vector(units, f0, torch.randn(2, 6))
    assert a.shape == c.shape == (2, 1, 6 * 16)
    assert (a[0] - b[0]).abs().max() > 1e-5 and torch.allclose(a[1], b[1])
    assert isinstance(vector.speaker_proj, torch.nn.Linear) and vector.speaker_embed is None
    with pytest.raises(ValueError, match="needs a speaker"):
        lookup(units, f0)


def test_weight_norm_removal_keeps_outputs():
    torch.manual_seed(1)
    gen = build_generator(tiny()).eval()
    perturb_weight_norm_gains(gen)
    units, f0 = torch.randint(0, 20, (2, 10)), torch.randint(0, 33, (2, 10))
    with torch.no_grad():
        before = gen(units, f0)
        assert has_weight_norm(gen)
        folded = remove_weight_norm(copy.deepcopy(gen))  # torch shares parametrized classes between copies
        after = folded(units, f0)
        again = gen(units, f0)  # the original still works and still has weight norm
    assert not has_weight_norm(folded) and has_weight_norm(gen)
    torch.testing.assert_close(after, before, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(again, before, atol=0, rtol=0)


def test_export_load_round_trip_and_batch_equals_single(tmp_path):
    torch.manual_seed(2)
    cfg = tiny(speaker="lookup", num_speakers=2, speaker_dim=8)
    gen = build_generator(cfg)
    perturb_weight_norm_gains(gen)
    save_vocoder(tmp_path / "voc", gen, cfg, speakers=["ana", "bob"], extra={"seed": 2})
    files = sorted(p.name for p in (tmp_path / "voc").iterdir())
    assert files == ["generator.safetensors", "model_card.json"]
    card = json.loads((tmp_path / "voc" / "model_card.json").read_text())
    assert card["hop_samples"] == 16 and card["speakers"] == ["ana", "bob"] and card["seed"] == 2
    voc = Vocoder.from_dir(tmp_path / "voc")
    assert not has_weight_norm(voc.generator)
    rng = np.random.default_rng(0)
    units = [rng.integers(0, 20, n) for n in (9, 4, 13)]
    f0 = [np.where(rng.random(len(u)) < 0.3, 0.0, rng.uniform(60, 300, len(u))) for u in units]
    batched = voc.synthesize(units, f0=f0, speaker=["bob", 0, 1], batch_size=8, max_padding=10.0)  # one batch
    alone = [voc.synthesize(u, f0=f, speaker=s) for u, f, s in zip(units, f0, ["bob", 0, 1])]
    reference, _, _ = load_vocoder(tmp_path / "voc")
    from unitwave.vocoder.pitch import quantize_f0

    with torch.no_grad():
        direct = reference(
            torch.from_numpy(units[0])[None],
            torch.from_numpy(quantize_f0(f0[0], cfg.pitch))[None],
            torch.tensor([1]),
        )
    for b, a, u in zip(batched, alone, units):
        assert b.shape == a.shape == (len(u) * 16,)
        np.testing.assert_allclose(b, a, atol=1e-6)
    np.testing.assert_allclose(alone[0], direct[0, 0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="unknown speaker"):
        voc.synthesize(units[0], f0=f0[0], speaker="carl")
    with pytest.raises(ValueError, match="pitch-conditioned"):
        voc.synthesize(units[0], speaker=0)


def harmonic(seconds: float, f0: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.15 * np.sin(2 * np.pi * 2 * f0 * t)).astype(np.float32)


def test_generator_steps_reduce_the_mel_loss():
    torch.manual_seed(0)
    cfg = dc.replace(tiny(f0="none"), loss=LossWeights(adversarial=0.0, feature_matching=0.0))
    gen = build_generator(cfg)
    objective = VocoderObjective(cfg)
    assert (
        objective.discriminator is None
        and objective.discriminator_step(torch.zeros(1, 1, 64), torch.zeros(1, 1, 64)) is None
    )
    real = torch.from_numpy(harmonic(0.1, 180.0))[None, None]
    units = (torch.arange(real.shape[-1] // 16) // 25 % 20)[None]
    opt = torch.optim.AdamW(gen.parameters(), 1e-2, betas=(0.8, 0.99))
    losses = []
    for _ in range(12):
        loss, logs = objective.generator_step(real, gen(units))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["mel_loss"])
    assert losses[-1] < 0.85 * losses[0], losses


def test_gan_losses_have_every_term_and_gradients_reach_the_discriminator():
    torch.manual_seed(0)
    cfg = tiny()
    gen, objective = build_generator(cfg), VocoderObjective(cfg)
    assert objective.discriminator is not None
    real = torch.from_numpy(harmonic(0.1, 200.0)[: 96 * 16])[None, None]
    fake = gen(torch.randint(0, 20, (1, 96)), torch.randint(0, 33, (1, 96)))
    d_loss, d_logs = objective.discriminator_step(real, fake)
    d_loss.backward()
    assert all(p.grad is not None for p in objective.discriminator.parameters() if p.requires_grad)
    assert all(p.grad is None for p in gen.parameters())  # fake was detached for D
    g_loss, g_logs = objective.generator_step(real, fake)
    assert set(g_logs) == {"mel_loss", "adv_loss", "fm_loss", "g_loss"} and np.isfinite(d_logs["d_loss"])
    expected = 45 * g_logs["mel_loss"] + g_logs["adv_loss"] + 2 * g_logs["fm_loss"]
    assert g_logs["g_loss"] == pytest.approx(expected, rel=1e-5)
    g_loss.backward()
    assert gen.unit_embed.weight.grad is not None


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="upsample_kernel_sizes"):
        HifiganConfig(upsample_rates=(5,), upsample_kernel_sizes=(10,), upsample_initial_channel=64)
    with pytest.raises(ValueError, match="f0_bins"):
        VocoderConfig(hifigan=dc.replace(TINY, f0_bins=20))
    with pytest.raises(ValueError, match="num_speakers"):
        dc.replace(TINY, speaker="lookup")


@pytest.mark.parametrize("generator", ["hifigan", "simple"])
def test_channels_last_layout_gives_the_same_audio(generator, tmp_path):
    from unitwave.vocoder.fast import to_channels_last

    torch.manual_seed(3)
    cfg = dc.replace(
        tiny(),
        generator=generator,
        simple=SimpleConfig(num_units=20, unit_dim=16, channels=32, upsample_rates=(4, 4)),
    )
    gen = build_generator(cfg)
    if generator == "hifigan":
        with pytest.raises(ValueError, match="remove weight norm first"):
            to_channels_last(gen)
    save_vocoder(tmp_path / "voc", gen, cfg)
    plain = Vocoder.from_dir(tmp_path / "voc", layout="plain")
    fast = Vocoder.from_dir(tmp_path / "voc", layout="channels_last")
    assert fast.generator.channels_last and not plain.generator.channels_last
    units = [np.arange(n) % 20 for n in (7, 12)]
    f0 = [np.full(len(u), 120.0) for u in units] if generator == "hifigan" else None
    for a, b in zip(plain.synthesize(units, f0=f0), fast.synthesize(units, f0=f0)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_length_buckets_limit_padding():
    from unitwave.vocoder.inference import length_buckets

    lengths = [100, 20, 98, 50, 97, 49, 10]
    batches = length_buckets(lengths, batch_size=8, max_padding=0.2)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert longest * len(b) <= 1.2 * sum(lengths[i] for i in b)
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    assert batches[0] == [0, 2, 4, 3]  # 400 padded frames for 345 real: within 20 %
    assert length_buckets(lengths, batch_size=1) == [[i] for i in sorted(range(7), key=lambda i: -lengths[i])]


def test_inference_copy_of_a_training_generator_leaves_it_untouched():
    torch.manual_seed(4)
    cfg = tiny()
    gen = build_generator(cfg).train()
    perturb_weight_norm_gains(gen)
    units, f0 = np.arange(10) % 20, np.full(10, 150.0)
    wave = Vocoder.from_generator(gen, cfg).synthesize(units, f0=f0)
    assert gen.training and has_weight_norm(gen)
    from unitwave.vocoder.pitch import quantize_f0

    with torch.no_grad():
        expected = gen.eval()(
            torch.from_numpy(units)[None], torch.from_numpy(quantize_f0(f0, cfg.pitch))[None]
        )
    np.testing.assert_allclose(wave, expected[0, 0].numpy(), atol=1e-6)


def test_mel_loss_module_matches_the_feature_function():
    from unitwave.audio.features import log_mel_spectrogram
    from unitwave.vocoder.mel import LogMel

    wave = torch.randn(2, 1, 64 * 40)
    ours = LogMel(TINY_MEL, 16000)(wave)
    reference = log_mel_spectrogram(
        wave[:, 0], 16000, n_fft=256, hop_length=64, win_length=256, n_mels=32, fmax=None
    )
    assert ours.shape == (2, 32, 40)
    torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("generator", ["hifigan", "simple"])
def test_long_utterances_are_synthesized_in_chunks_with_the_same_audio(generator, tmp_path):
    from unitwave.vocoder.inference import chunk_windows

    torch.manual_seed(4)
    cfg = dc.replace(
        tiny(upsample_rates=(5, 4), upsample_kernel_sizes=(11, 8)),
        generator=generator,
        simple=SimpleConfig(num_units=20, unit_dim=16, channels=32, upsample_rates=(4, 4)),
    )
    gen = build_generator(cfg)
    perturb_weight_norm_gains(gen)
    save_vocoder(tmp_path / "voc", gen, cfg)
    voc = Vocoder.from_dir(tmp_path / "voc")
    context = voc.generator.context_frames
    assert 0 < context < 40
    rng = np.random.default_rng(4)
    units = [rng.integers(0, 20, n) for n in (203, 31)]
    f0 = [rng.uniform(60, 300, len(u)) for u in units] if generator == "hifigan" else None
    chunk_s = 40 * voc.frame_hop_s  # 40-frame chunks: the first utterance runs as 6 windows
    assert len(chunk_windows(203, 40, context)) == 6
    whole = voc.synthesize(units, f0=f0, max_chunk_s=None)
    for batch_size in (1, 8):
        chunked = voc.synthesize(units, f0=f0, max_chunk_s=chunk_s, batch_size=batch_size)
        for a, b in zip(whole, chunked):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=1e-6 * float(np.abs(a).max()))
    # the context is what makes them equal: chunks synthesized on their own differ at the seams
    f0_0 = f0[0] if f0 is not None else None
    naive = np.concatenate(
        [
            voc.synthesize(units[0][a : a + 40], f0=None if f0_0 is None else f0_0[a : a + 40])
            for a in range(0, 203, 40)
        ]
    )
    assert np.abs(naive - whole[0]).max() > 1e-3 * np.abs(whole[0]).max()


def test_chunk_windows_tile_the_utterance():
    from unitwave.vocoder.inference import chunk_windows

    assert chunk_windows(10, None, 3) == [(0, 10, 0, 10)]
    assert chunk_windows(10, 10, 3) == [(0, 10, 0, 10)]
    windows = chunk_windows(25, 10, 3)
    assert windows == [(0, 13, 0, 10), (7, 23, 10, 20), (17, 25, 20, 25)]
    wave = np.arange(25 * 4)
    kept = np.concatenate([w.keep(wave[w.start * 4 : w.end * 4]) for w in windows])
    np.testing.assert_array_equal(kept, wave)


def test_bad_calls_are_refused_with_what_to_pass(tmp_path):
    torch.manual_seed(5)
    cfg = tiny()
    save_vocoder(tmp_path / "voc", build_generator(cfg), cfg, extra={"f0_per_frame": 1})
    voc = Vocoder.from_dir(tmp_path / "voc")
    units = np.arange(10) % 20
    hz = np.full(10, 120.0)
    with pytest.raises(ValueError, match="needs 1 per unit frame"):
        voc.synthesize(units, f0=np.repeat(hz, 2))  # twice as long: refused, not twice the audio
    with pytest.raises(ValueError, match="pass F0 in Hz as floats"):
        voc.synthesize(units, f0=np.full(10, 120))
    with pytest.raises(ValueError, match="unit ids must be integers"):
        voc.synthesize(units + 0.5, f0=hz)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        voc.synthesize(units, f0=hz, batch_size=0)
    with pytest.raises(ValueError, match="max_chunk_s must be > 0"):
        voc.synthesize(units, f0=hz, max_chunk_s=0)
    with pytest.raises(ValueError, match="no speaker conditioning"):
        voc.synthesize(units, f0=hz, speaker=1)
    assert voc.synthesize(units.astype(float), f0=hz).shape == (10 * cfg.hop,)  # whole numbers as floats are fine


def test_training_windows_shorter_than_the_mel_fft_are_refused():
    from unitwave.config import ConfigError
    from unitwave.vocoder.commands import VocoderTrainConfig

    with pytest.raises(ConfigError, match="--segment-length must be at least 1024 samples"):
        VocoderTrainConfig(output_dir=Path("x"), units=Path("u.jsonl"), segment_length=100).check()
