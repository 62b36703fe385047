"""Model configs of the unit vocoders: frozen dataclasses, saved in ``model_card.json`` (no torch here).

A :class:`VocoderConfig` says everything needed to rebuild a generator and feed it: which generator
(``"hifigan"``, the users' V2, or ``"simple"``, V1), its architecture, the sample rate, how F0 is
extracted and quantised, and the mel spectrogram the losses compare. Training hyper-parameters
(learning rates, epochs, segment length) belong to the training command, not here.
"""

from __future__ import annotations

import dataclasses as dc
import math
import typing as tp

F0Mode = tp.Literal["none", "bins", "continuous"]
SpeakerMode = tp.Literal["none", "lookup", "vector"]


@dc.dataclass(frozen=True)
class PitchConfig:
    """F0 extraction (WORLD DIO + StoneMask) and quantisation into log-spaced bins.

    Bin 0 is "unvoiced"; bins ``1..voiced_bins`` split ``[fmin_hz, fmax_hz]`` evenly in log frequency
    (F0 below/above the range falls into the first/last voiced bin).
    """

    voiced_bins: int = 32
    """Log-spaced bins for voiced frames (the embedding has one more: the unvoiced bin 0)."""
    fmin_hz: float = 50.0
    """Lower edge of the first voiced bin, Hz."""
    fmax_hz: float = 400.0
    """Upper edge of the last voiced bin, Hz."""
    floor_hz: float = 40.0
    """Lowest F0 the extractor searches, Hz."""
    ceil_hz: float = 800.0
    """Highest F0 the extractor searches, Hz."""
    analysis_period_ms: float = 5.0
    """Frame period of the extractor; its frames are pooled into unit frames."""
    quantizer: tp.Literal["log", "external"] = "log"
    """"log": unitwave quantises F0 in Hz itself; "external": the caller passes bin indices (imported
    legacy checkpoints, whose quantiser lived outside the checkpoint)."""

    def __post_init__(self) -> None:
        if self.voiced_bins < 1:
            raise ValueError(f"pitch.voiced_bins must be >= 1, got {self.voiced_bins}")
        if not 0 < self.fmin_hz < self.fmax_hz:
            raise ValueError(f"pitch: need 0 < fmin_hz < fmax_hz, got {self.fmin_hz}, {self.fmax_hz}")
        if not 0 < self.floor_hz < self.ceil_hz:
            raise ValueError(f"pitch: need 0 < floor_hz < ceil_hz, got {self.floor_hz}, {self.ceil_hz}")

    @property
    def num_bins(self) -> int:
        """Embedding rows: voiced bins + the unvoiced bin."""
        return self.voiced_bins + 1


@dc.dataclass(frozen=True)
class HifiganConfig:
    """HiFi-GAN generator with unit (+ F0, speaker, style) conditioning, as in fairseq's CodeHiFiGAN.

    The conditioning channels are concatenated in this order: unit embedding, F0 (embedding of bins,
    or one channel of continuous values), speaker (lookup or projected external vector), style.
    One conditioning frame becomes ``prod(upsample_rates)`` samples.
    """

    num_units: int = 100
    """Unit vocabulary size (k of the k-means)."""
    unit_dim: int = 128
    """Unit embedding width."""
    f0: F0Mode = "bins"
    """F0 conditioning: none, quantised bins (embedding), or one channel of continuous values."""
    f0_bins: int = 33
    """Rows of the F0 embedding (32 log bins + unvoiced by default)."""
    f0_dim: int = 128
    """F0 embedding width (mode "bins")."""
    speaker: SpeakerMode = "none"
    """Speaker conditioning: none, a lookup table, or an external speaker vector projected linearly."""
    num_speakers: int = 0
    """Rows of the speaker lookup table (mode "lookup")."""
    speaker_vector_dim: int = 0
    """Width of external speaker vectors (mode "vector")."""
    speaker_dim: int = 128
    """Speaker embedding width."""
    num_styles: int = 0
    """Rows of a style lookup table (0: no style conditioning)."""
    style_dim: int = 128
    """Style embedding width."""
    upsample_rates: tuple[int, ...] = (5, 4, 4, 2, 2)
    """Upsampling factor of each stage; the product is the hop in samples per conditioning frame."""
    upsample_kernel_sizes: tuple[int, ...] = (11, 8, 8, 4, 4)
    """Transposed-convolution kernel of each stage (kernel - rate must be even)."""
    upsample_initial_channel: int = 512
    """Channels after the input convolution; halved by every stage."""
    resblock: tp.Literal["1", "2"] = "1"
    """HiFi-GAN residual block type: "1" (two convolutions per dilation) or "2" (one)."""
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    """Kernels of the parallel residual blocks of the multi-receptive-field fusion."""
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    """Dilations of each residual block."""
    duration_hidden_dim: int = 0
    """Hidden width of a unit duration predictor (0: none; legacy speech-to-speech vocoders have one)."""
    duration_kernel_size: int = 3
    """Kernel of the duration predictor's convolutions."""
    duration_dropout: float = 0.5
    """Dropout of the duration predictor while training."""

    def __post_init__(self) -> None:
        n = len(self.upsample_rates)
        if n == 0 or len(self.upsample_kernel_sizes) != n:
            raise ValueError(
                "hifigan.upsample_rates and upsample_kernel_sizes must have the same non-zero length"
            )
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if u < 1 or k < u or (k - u) % 2:
                raise ValueError(
                    f"hifigan.upsample_kernel_sizes: kernel {k} for rate {u} must be >= the rate and differ "
                    f"from it by an even number (so each stage multiplies the length exactly)"
                )
        if (
            len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes)
            or not self.resblock_kernel_sizes
        ):
            raise ValueError(
                "hifigan.resblock_kernel_sizes and resblock_dilation_sizes must have the same length"
            )
        if self.upsample_initial_channel % (2**n):
            raise ValueError(f"hifigan.upsample_initial_channel must be divisible by 2**{n}")
        if self.f0 == "bins" and self.f0_bins < 2:
            raise ValueError("hifigan.f0_bins must be >= 2 when f0 is 'bins'")
        if self.speaker == "lookup" and self.num_speakers < 1:
            raise ValueError("hifigan.num_speakers must be >= 1 when speaker is 'lookup'")
        if self.speaker == "vector" and self.speaker_vector_dim < 1:
            raise ValueError("hifigan.speaker_vector_dim must be >= 1 when speaker is 'vector'")

    @property
    def hop(self) -> int:
        """Samples per conditioning frame (product of the upsampling rates)."""
        return math.prod(self.upsample_rates)

    @property
    def in_channels(self) -> int:
        """Channels of the concatenated conditioning (the input convolution's input)."""
        ch = self.unit_dim
        ch += {"none": 0, "bins": self.f0_dim, "continuous": 1}[self.f0]
        ch += self.speaker_dim if self.speaker != "none" else 0
        ch += self.style_dim if self.num_styles > 0 else 0
        return ch


@dc.dataclass(frozen=True)
class SimpleConfig:
    """The users' V1: unit embedding, transposed convolutions, tanh; trained with mel + L1 only."""

    num_units: int = 100
    """Unit vocabulary size (k of the k-means)."""
    unit_dim: int = 256
    """Unit embedding width."""
    channels: int = 512
    """Channels after the input convolution; halved by every upsampling stage."""
    upsample_rates: tuple[int, ...] = (5, 4, 4, 4)
    """Upsampling factor of each stage; the product is the hop in samples."""
    kernel_size_factor: int = 2
    """Each transposed convolution's kernel is this factor times its rate."""

    def __post_init__(self) -> None:
        if not self.upsample_rates or min(self.upsample_rates) < 1:
            raise ValueError("simple.upsample_rates must be positive integers")
        if self.channels % (2 ** len(self.upsample_rates)):
            raise ValueError(f"simple.channels must be divisible by 2**{len(self.upsample_rates)}")

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)


@dc.dataclass(frozen=True)
class MelConfig:
    """The log-mel spectrogram of the mel L1 loss (HiFi-GAN's: magnitude STFT, Slaney mel, log)."""

    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin_hz: float = 0.0
    fmax_hz: float | None = None
    """Upper mel edge; None: half the sample rate."""


@dc.dataclass(frozen=True)
class LossWeights:
    """Weights of the generator objective (HiFi-GAN: adversarial 1, feature matching 2, mel 45)."""

    adversarial: float = 1.0
    feature_matching: float = 2.0
    mel: float = 45.0
    waveform_l1: float = 0.0
    """L1 between waveforms (the V1 "simple" generator uses it; HiFi-GAN does not)."""


@dc.dataclass(frozen=True)
class VocoderConfig:
    """Everything that defines a vocoder model: generator, rates, pitch, mel loss, loss weights."""

    generator: tp.Literal["hifigan", "simple"] = "hifigan"
    """Generator architecture (a key of ``unitwave.vocoder.models.GENERATORS``)."""
    sample_rate: int = 16000
    """Output sample rate in Hz."""
    hifigan: HifiganConfig = HifiganConfig()
    simple: SimpleConfig = SimpleConfig()
    pitch: PitchConfig = PitchConfig()
    mel: MelConfig = MelConfig()
    loss: LossWeights = LossWeights()
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    """Periods of the multi-period discriminator."""
    msd_scales: int = 3
    """Scales of the multi-scale discriminator (raw, /2, /4 average-pooled)."""
    discriminator_divisor: int = 1
    """Divides every discriminator channel count (1: HiFi-GAN's sizes; 4-8 for quick CPU runs)."""

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if (
            self.generator == "hifigan"
            and self.hifigan.f0 == "bins"
            and self.hifigan.f0_bins != self.pitch.num_bins
        ):
            raise ValueError(
                f"hifigan.f0_bins ({self.hifigan.f0_bins}) must equal pitch.voiced_bins + 1 "
                f"({self.pitch.num_bins}): the F0 embedding has one row per bin plus the unvoiced bin"
            )

    @property
    def hop(self) -> int:
        """Samples per unit frame (when F0 runs at the unit rate)."""
        return self.hifigan.hop if self.generator == "hifigan" else self.simple.hop

    @property
    def uses_f0(self) -> bool:
        return self.generator == "hifigan" and self.hifigan.f0 != "none"

    @property
    def speaker_mode(self) -> SpeakerMode:
        return self.hifigan.speaker if self.generator == "hifigan" else "none"

    def with_units(self, num_units: int) -> VocoderConfig:
        """The same config with the unit vocabulary set (from the k-means of the unit corpus)."""
        return dc.replace(
            self,
            hifigan=dc.replace(self.hifigan, num_units=num_units),
            simple=dc.replace(self.simple, num_units=num_units),
        )


def default_simple_config() -> VocoderConfig:
    """V1 defaults: the simple generator trained with mel + waveform L1 and no discriminator."""
    return VocoderConfig(
        generator="simple", loss=LossWeights(adversarial=0.0, feature_matching=0.0, mel=45.0, waveform_l1=1.0)
    )
