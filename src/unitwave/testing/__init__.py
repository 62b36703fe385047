"""Test material that ships with the package: a deterministic synthetic speech corpus with ground truth.

:func:`build_corpus` speaks sentences with espeak-ng (pt-br, en-us) and writes WAVs with a manifest,
phone and word alignments, and speech/pause intervals, for tests, benchmarks and the demo. Only numpy,
soundfile and soxr are needed besides the espeak-ng system library; no torch.
"""

from unitwave.testing.corpus import CorpusConfig, CorpusInfo, build_corpus

__all__ = ["CorpusConfig", "CorpusInfo", "build_corpus"]
