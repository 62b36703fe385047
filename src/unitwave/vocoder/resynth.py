"""``unitwave resynth INPUT OUT_DIR --units KM_DIR --vocoder VOC_DIR``: speech to speech through units.

Per record, on the engine (shards, resume, OOM back-off, per-record errors, any backend): the audio is
loaded at the encoder's rate (resampled), encoded into units with the k-means folder's
:class:`~unitwave.units.extractor.UnitExtractor`, given F0 from the same audio when the vocoder is
pitch-conditioned, and synthesized by the vocoder (length-sorted batches) into a 16-bit WAV at the
vocoder's rate: ``OUT_DIR/audio/<path of the source relative to the input folder or manifest>.wav``
(``--relative-to`` picks another root; nothing is ever written outside OUT_DIR). A rerun skips the records
it finished (the engine's resume); records whose input changed, or all of them when the k-means or vocoder
files changed, run again. ``--keep-existing`` also keeps WAVs found at output paths (made by other scripts):
their records say ``"existing": true`` and carry no units.

Output records: the input record (other fields untouched) with ``audio_filepath`` (the synthesized
WAV), ``duration`` (its seconds), ``source`` (+ ``source_offset`` for slices), ``units`` (one id per
frame), ``num_units``, ``frame_hop_s`` and, for speaker-conditioned vocoders, ``vocoder_speaker``.

Speakers: a vocoder with a speaker table speaks as ``--speaker NAME`` (or ``--speaker ID``, the table's
row: legacy checkpoints come without names) for every record, else as the record's own ``speaker`` when
the table has it; any other record fails (``errors.jsonl``) naming the table, so nothing is silently voiced
by the wrong speaker. ``--speaker`` with a vocoder that has no speaker table is an error.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import tyro

from unitwave.data.inputs import input_root, iter_inputs
from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record
from unitwave.data.paths import OutputNames, files_signature, safe_join
from unitwave.engine.options import EngineConfig
from unitwave.engine.stage import Stage

if tp.TYPE_CHECKING:
    from unitwave.vocoder.inference import Vocoder

#: settings that never change a result: a run folder may resume with other values
RESUME_IGNORES = ("device", "batch_seconds")


@dc.dataclass(frozen=True)
class ResynthConfig:
    """Resynthesize audio through discrete units: encoder -> k-means -> vocoder, written under OUT_DIR/audio/."""

    input: tyro.conf.Positional[Path]
    """A folder of audio (searched recursively) or a JSONL manifest."""
    output_dir: tyro.conf.Positional[Path]
    """Run folder: audio/ (same relative folders as the input), manifest.jsonl, errors.jsonl, config.yaml."""
    units: Path
    """k-means folder (kmeans.safetensors + model_card.json) from `unitwave units` / `units fit`: its card names the encoder."""
    vocoder: Path
    """Vocoder folder (model_card.json + generator.safetensors, or a `vocoder train` run folder), or a legacy fairseq one."""
    speaker: tp.Optional[str] = None
    """Speak every record as this speaker of the vocoder's table, by name or row id (default: each record's
    own speaker)."""
    relative_to: tp.Optional[Path] = None
    """Folder whose relative structure the outputs keep (default: the input folder, or the manifest's audio root)."""
    device: str = "auto"
    """cpu, cuda, cuda:1, ... (auto: cuda when available)."""
    keep_existing: bool = False
    """Keep WAVs already at an output path (e.g. made by other scripts) instead of synthesizing them; a rerun
    of this command skips its own finished records anyway."""
    batch_seconds: tp.Optional[float] = None
    """Padded audio seconds per batch (default: from free GPU memory; 60 on CPU); halved on out-of-memory."""
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


def check_compatible(km_card: dict[str, tp.Any], voc: Vocoder, speaker: str | None, km_dir: Path, voc_dir: Path) -> None:
    """ValueError naming both folders when the units cannot drive the vocoder (frame rate, k, speakers)."""
    hop = float(km_card.get("frame_hop_s") or 0.0)
    if abs(hop - voc.frame_hop_s) > 1e-9:
        raise ValueError(
            f"{km_dir} gives units every {hop * 1000:g} ms but {voc_dir} was trained on {voc.frame_hop_s * 1000:g} ms "
            "frames: use the k-means folder the vocoder's unit corpus was encoded with"
        )
    from unitwave.units.extractor import kmeans_id

    trained_on = (voc.card.get("data") or {}).get("kmeans_id")
    if trained_on and trained_on != kmeans_id(km_dir):
        raise ValueError(f"{voc_dir} was trained on units of another k-means (id {trained_on}) than {km_dir} "
                         f"(id {kmeans_id(km_dir)}): its unit ids would mean other clusters; use the k-means folder "
                         "its unit corpus was encoded with")
    k = int(km_card["k"])
    if k > voc.num_units:
        raise ValueError(f"{km_dir} has k={k} units but {voc_dir} knows only {voc.num_units}: "
                         "use the k-means folder the vocoder was trained on")
    if voc.uses_f0 and (voc.cfg.hifigan.f0 == "continuous" or voc.cfg.pitch.quantizer == "external"):
        form = "continuous values" if voc.cfg.hifigan.f0 == "continuous" else "bins"
        raise ValueError(f"{voc_dir} takes F0 as {form} of a quantiser or normalisation that was not saved "
                         "with it (an imported checkpoint), so resynth cannot compute its F0 from audio")
    mode = voc.cfg.speaker_mode
    if mode == "vector":
        raise ValueError(f"{voc_dir} is conditioned on external speaker vectors, which resynth cannot provide")
    if speaker is not None:
        if mode == "none":
            raise ValueError(f"--speaker {speaker}: {voc_dir} has no speaker conditioning (leave --speaker out)")
        try:
            voc.speaker_id(speaker)
        except ValueError as e:
            raise ValueError(f"--speaker {speaker}: {e} (vocoder {voc_dir})") from None


class ResynthStage(Stage):
    """Audio records -> resynthesized WAVs + records (see the module docstring)."""

    name = "resynth"

    def __init__(self, cfg: ResynthConfig, root: Path, from_folder: bool, device: str, batch_seconds: float) -> None:
        self.cfg = cfg
        self.audio_dir = Path(cfg.output_dir).absolute() / "audio"
        self.names = OutputNames(root, from_folder)
        from unitwave.units.extractor import CARD_FILE
        from unitwave.units.kmeans import CENTROIDS_FILE
        from unitwave.vocoder.inference import Vocoder

        model_files = [Path(cfg.units) / CENTROIDS_FILE, Path(cfg.units) / CARD_FILE, *Vocoder.model_files(cfg.vocoder)[1]]
        self.models = files_signature(model_files)  # the same in every SLURM task while the models are unchanged
        self.device = device
        self.batch_seconds = batch_seconds
        self.extractor: tp.Any = None
        self.vocoder: tp.Any = None

    def setup(self) -> None:
        from unitwave.units.extractor import UnitExtractor
        from unitwave.vocoder.inference import Vocoder

        self.extractor = UnitExtractor.from_dir(self.cfg.units, device=self.device, max_batch_seconds=self.batch_seconds)
        self.vocoder = Vocoder.from_dir(self.cfg.vocoder, device=self.device)

    def plan(self, inputs: tp.Iterable[Record]) -> None:
        self.names.plan(inputs)

    def record_key(self, record: Record) -> str:
        # the output path and the models: a vocoder or k-means retrained in place redoes every record
        return f"{self.names.key(record)}|{self.models}"

    def destination(self, record: Record) -> Path:
        if not isinstance(record.get(AUDIO_FIELD), str) or not record[AUDIO_FIELD]:
            raise ValueError(f"record has no '{AUDIO_FIELD}' field")
        return safe_join(self.audio_dir, self.names.relpath(record))

    def speaker_of(self, record: Record) -> str | None:
        """The vocoder speaker a record is voiced by (None for vocoders without a table)."""
        voc = self.vocoder
        if voc.cfg.speaker_mode != "lookup":
            return None
        if self.cfg.speaker is not None:
            return self.cfg.speaker
        name = record.get("speaker")
        if isinstance(name, str) and name in (voc.speakers or []):
            return name
        known = ", ".join((voc.speakers or [])[:10])
        raise ValueError(f"speaker {name!r} is not in the vocoder's speaker table ({known}); pass --speaker NAME")

    def process(self, batch: list[Record]) -> list[list[Record]]:
        from unitwave.audio.io import audio_info, load_record

        ex = self.extractor
        results: list[list[Record] | None] = [None] * len(batch)
        todo: list[int] = []
        for i, record in enumerate(batch):
            dst = self.destination(record)
            if self.cfg.keep_existing and dst.is_file():
                results[i] = [{**self.output(record, dst, audio_info(dst).duration), "existing": True}]
            else:
                todo.append(i)
        waves, speakers = [], []
        for i in todo:  # all audio first: a bad file fails the batch before any model runs
            record = batch[i]
            wave = load_record(record, ex.sample_rate)
            if ex.num_frames(wave.size) == 0:
                field_ms = 1000 * ex.spec.receptive_field / ex.sample_rate
                raise ValueError(f"{wave.size / ex.sample_rate * 1000:.1f} ms of audio is shorter than one frame of "
                                 f"the encoder ({field_ms:.0f} ms)")
            waves.append(wave)
            speakers.append(self.speaker_of(record))
        if todo:
            synths, units = self.synthesize(waves, speakers)
            for i, synth, ids, speaker in zip(todo, synths, units, speakers):
                results[i] = [self.write(batch[i], ids, synth, speaker)]
        return tp.cast(list[list[Record]], results)

    def synthesize(self, waves: list[tp.Any], speakers: list[str | None]) -> tuple[list[tp.Any], list[tp.Any]]:
        """``(synthesized (T',) float32 at the vocoder's rate, units (N,) int64)`` per ``(T,)`` input wave at
        the encoder's rate; one encoder pass and length-sorted vocoder batches for them all."""
        ex, voc = self.extractor, self.vocoder
        units = ex.encode(waves)
        f0 = [voc.f0_from_audio(w, ex.sample_rate, len(u)) for w, u in zip(waves, units)] if voc.uses_f0 else None
        speaker = speakers if voc.cfg.speaker_mode == "lookup" else None
        return tp.cast(list, voc.synthesize(units, f0=f0, speaker=speaker)), units

    def write(self, record: Record, units: tp.Any, synth: tp.Any, speaker: str | None) -> Record:
        from unitwave.audio.io import write_wav

        dst = write_wav(self.destination(record), synth, self.vocoder.sample_rate)
        out = self.output(record, dst, len(synth) / self.vocoder.sample_rate)
        out.update({"units": [int(u) for u in units], "num_units": len(units), "frame_hop_s": self.extractor.frame_hop_s})
        if speaker is not None:
            out["vocoder_speaker"] = speaker
        return out

    def output(self, record: Record, dst: Path, seconds: float) -> Record:
        out = {k: v for k, v in record.items() if k != "offset"}
        out.update({AUDIO_FIELD: str(dst), "duration": round(seconds, 6), "source": record[AUDIO_FIELD]})
        if record.get("offset") is not None:
            out["source_offset"] = float(record["offset"])
        return out


def run(cfg: ResynthConfig) -> tp.Any:
    from unitwave.engine.batching import initial_batch_seconds
    from unitwave.engine.runner import run_stage
    from unitwave.units.encoders import resolve_device
    from unitwave.units.extractor import read_model_card
    from unitwave.units.presets import SSL_KINDS
    from unitwave.vocoder.inference import Vocoder

    km_card = read_model_card(cfg.units)  # fail early, naming the folder
    check_compatible(km_card, Vocoder.from_dir(cfg.vocoder, layout="plain"), cfg.speaker, cfg.units, cfg.vocoder)
    device = resolve_device(cfg.device)
    batch_seconds = cfg.batch_seconds or initial_batch_seconds(seconds_per_gib=20.0, default=60.0, device=device)
    stats = ReadStats()
    stage = ResynthStage(cfg, input_root(cfg.input, cfg.relative_to), Path(cfg.input).is_dir(), device, batch_seconds)
    ssl = dict(km_card["encoder"]).get("kind") in SSL_KINDS  # workers per device as `units encode` picks them
    return run_stage(stage, lambda: iter_inputs(cfg.input, stats, exclude=cfg.output_dir), cfg.output_dir, cfg.engine.for_model(device) if ssl else cfg.engine,
                     config=cfg, malformed_lines=lambda: stats.malformed, resume_ignores=RESUME_IGNORES)
