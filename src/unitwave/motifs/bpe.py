"""``unitwave motifs UNITS_TXT OUT_DIR``: SentencePiece BPE motifs over unit sequences.

Outputs (``<name>`` from ``<name>_units.txt``)::

    <name>_bpe.model        SentencePiece model over unit characters (unit u = chr(0xE000 + u))
    <name>_bpe.vocab        TSV: piece id, its unit sequence, score (readable: units, not characters)
    <name>_motifs.txt       the corpus as piece ids, line for line with the units file (an LM can train on it)
    <name>_motifs.jsonl     {"id", "pieces", "frames" per piece[, "run_frames" per run in dedup mode]}
    motif_analysis.json     top motifs (frequency, length, mean duration ms), coverage, length histograms
    config.yaml             the resolved config

Units -> pieces -> units is exact (checked on every utterance): in dedup mode the pieces give the run
sequence and ``run_frames`` the length of each run; in frames mode the pieces give the frames.
"""

from __future__ import annotations

import dataclasses as dc
import io
import json
import logging
import re
import typing as tp
from pathlib import Path

import tyro

from unitwave.config import ConfigError
from unitwave.motifs.encoding import (
    Utterance,
    default_name,
    load_corpus,
    sibling_timestamped,
    text_to_units,
    units_to_text,
)

log = logging.getLogger("unitwave")

TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\.\s*Please set it to a value <= (\d+)")
TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\.\s*(\d+) vs (\d+)")
MAX_ATTEMPTS = 4


@dc.dataclass(frozen=True)
class MotifsConfig:
    """Discover unit motifs with SentencePiece BPE (each unit one character, so pieces are unit n-grams)."""

    units: tyro.conf.Positional[Path]
    """<name>_units.txt: space-separated frame-level unit ids, one utterance per line."""
    output_dir: tyro.conf.Positional[Path]
    """Folder for the model, vocabulary, motif-encoded corpus and motif_analysis.json."""
    vocab_size: int = 500
    """Pieces in the vocabulary (units + motifs + <unk>); lowered automatically when the corpus cannot fill it."""
    dedup: bool = True
    """Learn motifs over runs (5 5 5 7 -> 5 7: a piece never starts or ends inside a run); --no-dedup learns over frames (pieces may split runs and encode durations)."""
    timestamps: tp.Optional[Path] = None
    """<name>_corpus_timestamped.jsonl for ids and durations (default: the one next to UNITS when present)."""
    name: tp.Optional[str] = None
    """Output file prefix (default: <name> of <name>_units.txt)."""
    frame_hop_ms: float = 20.0
    """Frame hop for durations when there is no timestamped corpus."""
    max_motif_units: int = 64
    """Longest piece, in symbols (SentencePiece max_sentencepiece_length)."""
    top: int = 100
    """Motifs listed in motif_analysis.json."""
    threads: int = 1
    """SentencePiece trainer threads."""


def train_bpe(sentences: list[str], vocab_size: int, max_piece: int, threads: int) -> bytes:
    """Train SentencePiece BPE on unit-character sentences; returns the serialized model."""
    import sentencepiece as spm

    longest = max((len(s.encode("utf-8")) for s in sentences), default=0)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer, model_type="bpe", vocab_size=vocab_size,
        character_coverage=1.0, split_by_whitespace=False, split_by_unicode_script=False, split_by_number=False,
        split_digits=False, normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, max_sentencepiece_length=max_piece, max_sentence_length=max(4192, longest + 16),
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, byte_fallback=False, num_threads=threads, minloglevel=2,
    )
    return buffer.getvalue()


def train_with_adjustment(sentences: list[str], requested: int, max_piece: int, threads: int) -> tuple[bytes, int, str]:
    """Train at ``requested`` vocabulary size, or at the largest size SentencePiece allows when that is
    too high for the corpus. Returns ``(model, vocab size used, what happened)``."""
    size, note = requested, ""
    for _ in range(MAX_ATTEMPTS):
        try:
            return train_bpe(sentences, size, max_piece, threads), size, note
        except RuntimeError as e:
            high, low = TOO_HIGH.search(str(e)), TOO_LOW.search(str(e))
            if high and int(high.group(2)) < size:
                allowed = int(high.group(2))
                note = (f"--vocab-size {requested} is too high for this corpus: SentencePiece allows at most "
                        f"{allowed} pieces; trained with {allowed}")
                size = allowed
                continue
            if low:
                raise ConfigError(
                    f"--vocab-size {size} is below the {low.group(2)} pieces this corpus needs "
                    f"(one per distinct unit + <unk>); use --vocab-size {low.group(2)} or more"
                ) from None
            raise
    raise RuntimeError(f"SentencePiece kept rejecting the vocabulary size (last tried {size})")


def piece_units_of(model: bytes) -> list[tuple[int, ...]]:
    """Unit sequence of every piece id (``()`` for ``<unk>``)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    return [() if sp.is_unknown(i) or sp.is_control(i) else tuple(text_to_units(sp.id_to_piece(i)))
            for i in range(sp.get_piece_size())]


def encode_corpus(model: bytes, corpus: list[Utterance], dedup: bool) -> tuple[list[list[int]], list[tuple[list[int], list[int], list[float]]]]:
    """Piece ids of every utterance and its ``(symbols, frames, seconds)``; verifies the exact round trip."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    pieces = piece_units_of(model)
    encoded, symbol_data = [], []
    for utt in corpus:
        symbols, frames, seconds = utt.symbols(dedup)
        ids = sp.encode(units_to_text(symbols))
        decoded = [u for p in ids for u in pieces[p]]
        if decoded != symbols:
            raise RuntimeError(f"utterance {utt.id}: pieces do not decode to its units (unknown unit?); this is a bug")
        encoded.append(ids)
        symbol_data.append((symbols, frames, seconds))
    return encoded, symbol_data


def decode_frames(piece_ids: tp.Sequence[int], pieces: list[tuple[int, ...]], run_frames: tp.Sequence[int] | None) -> list[int]:
    """Frame-level units from piece ids (+ the frames of each run in dedup mode)."""
    symbols = [u for p in piece_ids for u in pieces[p]]
    if run_frames is None:
        return symbols
    if len(run_frames) != len(symbols):
        raise ValueError(f"run_frames has {len(run_frames)} entries for {len(symbols)} runs")
    return [u for u, n in zip(symbols, run_frames) for _ in range(int(n))]


def write_outputs(cfg: MotifsConfig, name: str, model: bytes, corpus: list[Utterance], encoded: list[list[int]],
                  symbol_data: list[tuple[list[int], list[int], list[float]]]) -> dict[str, Path]:
    import sentencepiece as spm

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{name}_{k}" for k in ("bpe.model", "bpe.vocab", "motifs.txt", "motifs.jsonl")}
    paths["bpe.model"].write_bytes(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    pieces = piece_units_of(model)
    with open(paths["bpe.vocab"], "w", encoding="utf-8") as f:
        f.write("id\tunits\tscore\n")
        for i, units in enumerate(pieces):
            text = " ".join(map(str, units)) if units else sp.id_to_piece(i)
            f.write(f"{i}\t{text}\t{sp.get_score(i) + 0.0:g}\n")
    with open(cfg.units, "rb") as f:
        total_lines = sum(1 for _ in f)
    with open(paths["motifs.txt"], "w", encoding="utf-8") as txt, open(paths["motifs.jsonl"], "w", encoding="utf-8") as js:
        written = 0  # motifs.txt stays line-aligned with the units file: its empty lines stay empty
        for utt, ids, (_, frames, _) in zip(corpus, encoded, symbol_data):
            txt.write("\n" * max(0, utt.line - 1 - written))
            written = max(written, utt.line - 1)
            txt.write(" ".join(map(str, ids)) + "\n")
            written += 1
            per_piece, pos = [], 0
            for p in ids:
                per_piece.append(sum(frames[pos : pos + len(pieces[p])]))
                pos += len(pieces[p])
            row: dict[str, tp.Any] = {"id": utt.id, "pieces": ids, "frames": per_piece}
            if cfg.dedup:
                row["run_frames"] = frames
            js.write(json.dumps(row) + "\n")
        txt.write("\n" * max(0, total_lines - written))
    return paths


def run(cfg: MotifsConfig) -> dict[str, tp.Any]:
    from unitwave.config import save_config
    from unitwave.motifs.analysis import analyse_motifs

    if cfg.vocab_size < 2:
        raise ConfigError(f"--vocab-size must be >= 2 (got {cfg.vocab_size})")
    if cfg.max_motif_units < 2:
        raise ConfigError(f"--max-motif-units must be >= 2 (got {cfg.max_motif_units})")
    name = cfg.name or default_name(cfg.units)
    timestamps = cfg.timestamps if cfg.timestamps is not None else sibling_timestamped(cfg.units)
    if timestamps is not None and not Path(timestamps).is_file():
        raise FileNotFoundError(f"--timestamps {timestamps}: no such file")
    corpus = load_corpus(cfg.units, timestamps, cfg.frame_hop_ms / 1000.0)
    if not corpus:
        raise ValueError(f"{cfg.units} holds no units (every line is empty)")
    sentences = [units_to_text(u.symbols(cfg.dedup)[0]) for u in corpus]
    model, used, note = train_with_adjustment(sentences, cfg.vocab_size, cfg.max_motif_units, cfg.threads)
    if note:
        print(f"motifs: {note}", flush=True)
    encoded, symbol_data = encode_corpus(model, corpus, cfg.dedup)
    write_outputs(cfg, name, model, corpus, encoded, symbol_data)
    analysis = analyse_motifs(piece_units_of(model), encoded, [d[1] for d in symbol_data], [d[2] for d in symbol_data], cfg.top)
    report = {
        "name": name,
        "units_file": str(cfg.units),
        "timestamps_file": str(timestamps) if timestamps else None,
        "mode": "runs" if cfg.dedup else "frames",
        "vocab_size_requested": cfg.vocab_size,
        "vocab_size": used,
        "vocab_size_adjusted": used != cfg.vocab_size,
        "adjustment": note or None,
        **analysis,
    }
    analysis_path = Path(cfg.output_dir) / "motif_analysis.json"
    analysis_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    save_config(cfg, Path(cfg.output_dir))
    top = report["top_motifs"][:3]
    print(
        f"motifs: {used} pieces ({report['vocabulary']['motifs']} motifs) over {report['utterances']} utterances, "
        f"{report['symbols_per_token']} {'runs' if cfg.dedup else 'frames'}/token, motif coverage "
        f"{100 * report['coverage']['motifs']:.1f}% of frames; top: "
        + ", ".join(f"[{m['text']}] x{m['count']} {m['mean_duration_ms']:.0f} ms" for m in top)
        + f" -> {analysis_path}",
        flush=True,
    )
    return report
