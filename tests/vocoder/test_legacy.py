"""Legacy fairseq CodeHiFiGAN checkpoints load into unitwave's generator and give the same audio (1e-5).

The reference below is a compact re-implementation of fairseq's ``CodeGenerator`` (HiFi-GAN generator +
unit/F0/speaker conditioning + duration predictor), written here from fairseq's architecture: random
initialised, saved in fairseq's layout (``{"generator": state_dict}`` + ``config.json``) with either
weight-norm layout, then loaded by :mod:`unitwave.vocoder.legacy`. Comparisons run the 1-D decoder layout:
the channels-last CPU layout (tested in test_vocoder_models.py) agrees to float rounding, which with these
deliberately large random weights can reach 1e-4.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unitwave.vocoder.inference import Vocoder
from unitwave.vocoder.legacy import import_legacy, load_legacy

SLOPE = 0.1


def make_wn(layout: str):
    def wn(m: nn.Module) -> nn.Module:
        if layout == "old":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return torch.nn.utils.weight_norm(m)
        return torch.nn.utils.parametrizations.weight_norm(m) if layout == "new" else m

    return wn


class RefResBlock(nn.Module):
    def __init__(self, wn, ch: int, k: int, dil) -> None:
        super().__init__()

        def conv(d: int) -> nn.Module:
            return wn(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=(k * d - d) // 2))

        self.convs1 = nn.ModuleList([conv(d) for d in dil])
        self.convs2 = nn.ModuleList([conv(1) for _ in dil])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = c2(F.leaky_relu(c1(F.leaky_relu(x, SLOPE)), SLOPE)) + x
        return x


class RefDurPredictor(nn.Module):
    def __init__(self, p: dict) -> None:
        super().__init__()
        d, h, k = p["encoder_embed_dim"], p["var_pred_hidden_dim"], p["var_pred_kernel_size"]
        self.conv1 = nn.Sequential(nn.Conv1d(d, h, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln1 = nn.LayerNorm(h)
        self.conv2 = nn.Sequential(nn.Conv1d(h, h, k, padding=1), nn.ReLU())
        self.ln2 = nn.LayerNorm(h)
        self.proj = nn.Linear(h, 1)

    def forward(self, x):  # B x T x C -> B x T (eval: no dropout)
        x = self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2))
        x = self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2))
        return self.proj(x).squeeze(2)


class RefCodeGenerator(nn.Module):
    """fairseq's CodeGenerator(Generator), inference path."""

    def __init__(self, cfg: dict, layout: str) -> None:
        super().__init__()
        wn = make_wn(layout)
        ch = cfg["upsample_initial_channel"]
        self.num_kernels = len(cfg["resblock_kernel_sizes"])
        self.conv_pre = wn(nn.Conv1d(cfg.get("model_in_dim", 80), ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
            self.ups.append(
                wn(nn.ConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, u, padding=(k - u) // 2))
            )
            for rk, rd in zip(cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"]):
                self.resblocks.append(RefResBlock(wn, ch // 2 ** (i + 1), rk, rd))
        self.conv_post = wn(nn.Conv1d(ch // 2 ** len(self.ups), 1, 7, 1, padding=3))
        emb = cfg["embedding_dim"]
        self.dict = nn.Embedding(cfg["num_embeddings"], emb)
        self.multispkr, self.embedder = cfg.get("multispkr"), cfg.get("embedder_params")
        if self.multispkr and not self.embedder:
            self.spkr = nn.Embedding(cfg.get("num_speakers", 200), emb)
        elif self.embedder:
            self.spkr = nn.Linear(cfg.get("embedder_dim", 256), emb)
        self.dur_predictor = (
            RefDurPredictor(cfg["dur_predictor_params"]) if cfg.get("dur_predictor_params") else None
        )
        self.f0 = cfg.get("f0")
        n = cfg.get("f0_quant_num_bin", 0)
        self.f0_quant_embed = nn.Embedding(n, emb) if n > 0 else None

    @staticmethod
    def _upsample(signal, max_frames):
        if signal.dim() == 2:
            signal = signal.unsqueeze(2)
        bsz, channels, cond_length = signal.size()
        signal = signal.unsqueeze(3).repeat(1, 1, 1, max_frames // cond_length)
        return signal.view(bsz, channels, max_frames)

    def forward(self, code, f0=None, spkr=None, dur_prediction=False):
        x = self.dict(code).transpose(1, 2)
        if self.dur_predictor is not None and dur_prediction:
            dur = torch.clamp(torch.round(torch.exp(self.dur_predictor(x.transpose(1, 2))) - 1).long(), min=1)
            x = torch.repeat_interleave(x, dur.view(-1), dim=2)
        if self.f0:
            f0 = self.f0_quant_embed(f0.long()).transpose(1, 2) if self.f0_quant_embed else f0.unsqueeze(1)
            if x.shape[-1] < f0.shape[-1]:
                x = self._upsample(x, f0.shape[-1])
            elif x.shape[-1] > f0.shape[-1]:
                f0 = self._upsample(f0, x.shape[-1])
            x = torch.cat([x, f0], dim=1)
        if self.multispkr:
            x = torch.cat([x, self._upsample(self.spkr(spkr).transpose(1, 2), x.shape[-1])], dim=1)
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            xs = None
            for j in range(self.num_kernels):
                r = self.resblocks[i * self.num_kernels + j](x)
                xs = r if xs is None else xs + r
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


BASE = {
    "resblock": "1",
    "upsample_rates": [4, 2],
    "upsample_kernel_sizes": [8, 4],
    "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
    "num_embeddings": 20,
    "embedding_dim": 8,
    "sampling_rate": 16000,
    "code_hop_size": 8,
    "segment_size": 8960,
    "batch_size": 16,
    "learning_rate": 0.0002,
}


def save_legacy(folder, cfg: dict, layout: str, seed: int = 0) -> RefCodeGenerator:
    torch.manual_seed(seed)
    ref = RefCodeGenerator(cfg, layout)
    with torch.no_grad():  # large random weights, so outputs are far from zero and differences would show
        for p in ref.parameters():
            p.normal_(0.0, 0.3)
    ref.eval()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    torch.save({"generator": ref.state_dict(), "optim_g": None, "steps": 100000}, folder / "g_00100000")
    return ref


def test_old_weight_norm_layout_with_f0_bins_and_speaker_lookup(tmp_path):
    cfg = {
        **BASE,
        "model_in_dim": 24,
        "f0": True,
        "f0_quant_num_bin": 10,
        "multispkr": "_",
        "num_speakers": 4,
    }
    ref = save_legacy(tmp_path / "voc", cfg, "old")
    keys = ref.state_dict()
    assert "conv_pre.weight_g" in keys and "ups.0.weight_v" in keys and "dict.weight" in keys
    code, f0 = torch.randint(0, 20, (1, 15)), torch.randint(0, 10, (1, 15))
    with torch.no_grad():
        expected = ref(code, f0, spkr=torch.tensor([[3]]))[0, 0].numpy()
    voc = Vocoder.from_dir(tmp_path / "voc", layout="plain")  # finds config.json + g_00100000
    got = voc.synthesize(code[0].numpy(), f0=f0[0].numpy(), speaker=3)
    assert got.shape == expected.shape == (15 * 8,) and np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert voc.frame_hop_s == pytest.approx(8 / 16000)
    with pytest.raises(ValueError, match="integer bin indices"):
        voc.synthesize(code[0].numpy(), f0=np.full(15, 120.0), speaker=3)


def test_new_layout_with_speaker_vector_and_faster_continuous_f0(tmp_path):
    cfg = {
        **BASE,
        "model_in_dim": 17,
        "f0": True,
        "embedder_params": {"x": 1},
        "embedder_dim": 6,
        "multispkr": True,
    }
    ref = save_legacy(tmp_path / "voc", cfg, "new", seed=1)
    assert "conv_pre.parametrizations.weight.original0" in ref.state_dict()
    code, f0 = torch.randint(0, 20, (2, 6)), torch.randn(2, 24)  # F0 at 4x the unit rate
    vec = torch.randn(2, 1, 6)
    with torch.no_grad():
        expected = ref(code, f0, spkr=vec)[:, 0].numpy()
    generator, vcfg, _ = load_legacy(tmp_path / "voc" / "g_00100000", tmp_path / "voc" / "config.json")
    assert vcfg.hifigan.f0 == "continuous" and vcfg.hifigan.speaker == "vector"
    with torch.no_grad():
        got = generator(code, f0, vec.squeeze(1))[:, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # batched through the Vocoder: same result per item
    voc = Vocoder.from_dir(tmp_path / "voc", layout="plain")
    out = voc.synthesize(
        list(code.numpy()), f0=list(f0.numpy()), speaker=list(vec.squeeze(1).numpy()), batch_size=8
    )
    for o, e in zip(out, expected):
        np.testing.assert_allclose(o, e, atol=1e-5)


def test_folded_weights_and_duration_prediction(tmp_path):
    dur = {
        "encoder_embed_dim": 8,
        "var_pred_hidden_dim": 8,
        "var_pred_kernel_size": 3,
        "var_pred_dropout": 0.5,
    }
    cfg = {**BASE, "model_in_dim": 8, "dur_predictor_params": dur}
    ref = save_legacy(tmp_path / "voc", cfg, "plain", seed=2)
    assert "conv_pre.weight" in ref.state_dict() and "dur_predictor.proj.weight" in ref.state_dict()
    code = torch.unique_consecutive(torch.randint(0, 20, (1, 10)))[None]
    with torch.no_grad():
        expected = ref(code, dur_prediction=True)[0, 0].numpy()
        frame_level = ref(code)[0, 0].numpy()
    generator, _, _ = load_legacy(tmp_path / "voc" / "g_00100000", tmp_path / "voc" / "config.json")
    with torch.no_grad():
        got = generator.decode(generator.condition(code, predict_durations=True))[0, 0].numpy()
        got_frames = generator(code)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got_frames, frame_level, atol=1e-5)
    voc = Vocoder.from_dir(tmp_path / "voc", layout="plain")
    np.testing.assert_allclose(voc.synthesize(code[0].numpy(), predict_durations=True), expected, atol=1e-5)


def test_import_writes_a_unitwave_folder_that_gives_the_same_audio(tmp_path):
    cfg = {**BASE, "model_in_dim": 16, "multispkr": "_", "num_speakers": 3}
    ref = save_legacy(tmp_path / "legacy", cfg, "old", seed=3)
    (tmp_path / "speakers.txt").write_text("ana\nbob\ncid\n")
    out = import_legacy(
        tmp_path / "legacy" / "g_00100000",
        tmp_path / "legacy" / "config.json",
        tmp_path / "voc",
        speakers_file=tmp_path / "speakers.txt",
    )
    assert sorted(p.name for p in out.iterdir()) == ["generator.safetensors", "model_card.json"]
    code = torch.randint(0, 20, (1, 11))
    with torch.no_grad():
        expected = ref(code, spkr=torch.tensor([[1]]))[0, 0].numpy()
    got = Vocoder.from_dir(out, layout="plain").synthesize(code[0].numpy(), speaker="bob")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_configs_unitwave_cannot_express_fail_naming_the_key(tmp_path):
    cfg = {
        **BASE,
        "model_in_dim": 24,
        "f0": True,
        "f0_quant_num_bin": 10,
        "multispkr": "_",
        "num_speakers": 4,
    }
    save_legacy(tmp_path / "voc", cfg, "old")
    (tmp_path / "voc" / "config.json").write_text(json.dumps({**cfg, "f0": False}))
    with pytest.raises(ValueError, match="conv_pre takes 24 channels"):
        Vocoder.from_dir(tmp_path / "voc")
    (tmp_path / "voc" / "config.json").write_text(json.dumps({**cfg, "f0_quantizer_path": "ckpt/f0_vq"}))
    with pytest.raises(ValueError, match="f0_quantizer_path"):
        Vocoder.from_dir(tmp_path / "voc")
    (tmp_path / "voc" / "config.json").write_text(
        json.dumps({k: v for k, v in cfg.items() if k != "embedding_dim"})
    )
    with pytest.raises(ValueError, match="embedding_dim"):
        Vocoder.from_dir(tmp_path / "voc")


def test_resynth_refuses_a_legacy_f0_vocoder_before_running(tmp_path):
    """Its F0 bins come from a quantiser outside the checkpoint: resynth cannot make them from audio."""
    from unitwave.vocoder.resynth import check_compatible

    cfg = {**BASE, "model_in_dim": 16, "f0": True, "f0_quant_num_bin": 10}
    save_legacy(tmp_path / "voc", cfg, "old")
    voc = Vocoder.from_dir(tmp_path / "voc", layout="plain")
    card = {"frame_hop_s": voc.frame_hop_s, "k": 20}
    with pytest.raises(ValueError, match="resynth cannot compute its F0 from audio"):
        check_compatible(card, voc, None, tmp_path / "km", tmp_path / "voc")
    save_legacy(tmp_path / "plain", {**BASE, "model_in_dim": 8}, "old")
    plain = Vocoder.from_dir(tmp_path / "plain", layout="plain")
    check_compatible(card, plain, None, tmp_path / "km", tmp_path / "plain")  # no F0: accepted
