"""Unit language models: ``unitwave lm train|score|sample|grid``.

:mod:`~unitwave.lm.model` (LSTM and causal transformer, pure torch), :mod:`~unitwave.lm.data` (unit
corpora, deterministic split, packed batches), :mod:`~unitwave.lm.module` (training through
:mod:`unitwave.train`), :mod:`~unitwave.lm.baselines` (unigram / Kneser-Ney bigram),
:mod:`~unitwave.lm.training`, :mod:`~unitwave.lm.inference` (score, sample; no Lightning),
:mod:`~unitwave.lm.grid` (grid search as an engine stage) and :mod:`~unitwave.lm.commands` (CLI configs).
"""
