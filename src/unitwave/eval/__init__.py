"""Evaluation of resynthesized speech: metrics (SNR, MCD, F0), the ``eval resynth`` command, report.html."""
