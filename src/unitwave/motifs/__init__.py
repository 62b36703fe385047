"""Unit motifs: SentencePiece BPE over unit sequences, each unit one private-use character.

``unitwave motifs UNITS_TXT OUT_DIR`` (:mod:`unitwave.motifs.bpe`) learns the pieces, writes the
motif-encoded corpus and ``motif_analysis.json``; :mod:`unitwave.motifs.encoding` maps units to
characters and corpora to symbol sequences (runs or frames); :mod:`unitwave.motifs.analysis` computes
``motif_analysis.json``. Unit corpora with planted motifs, for tests and demos, come from
:mod:`unitwave.testing.unit_corpus`.
"""
