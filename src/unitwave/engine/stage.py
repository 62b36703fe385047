"""What a per-record stage gives the engine.

A stage is a picklable object (a spawned worker, a SLURM task or a Ray task gets its own copy) with
``setup()`` called once per worker process and ``process(batch)`` called on batches of input records.
The engine owns everything else: sharding, resume, batching, OOM back-off, errors and progress.
"""

from __future__ import annotations

import abc
import typing as tp

from unitwave.data.manifest import Record

if tp.TYPE_CHECKING:
    from unitwave.engine.run_dir import RunDir


class Stage(abc.ABC):
    """A per-record stage.

    Subclasses set ``name`` and implement :meth:`process`. A stage that batches (model inference) sets
    :attr:`batch_seconds` to the audio seconds one batch may hold; the engine sorts by duration, builds
    batches under that cap and halves them on out-of-memory errors.
    """

    name: tp.ClassVar[str] = "stage"
    #: audio seconds per batch; None processes one record at a time
    batch_seconds: float | None = None
    #: most records per batch (with batch_seconds)
    max_batch_items: int = 64
    #: output record fields holding paths of files the stage writes into the run folder: a result whose
    #: file is gone is done again on rerun
    output_fields: tp.ClassVar[tuple[str, ...]] = ("audio_filepath",)

    def setup(self) -> None:
        """Load models etc. Called once per worker process, before the first batch."""

    def plan(self, inputs: tp.Iterable[Record]) -> None:
        """See the whole (normalised) input once before any record runs, on the driver and in every
        shard task alike, e.g. to find records whose output files would collide. Default: nothing."""

    def record_key(self, record: Record) -> str:
        """What besides the input record itself decides its result (e.g. its output path). A record done
        earlier is done again when its content or its key has changed since. Default: nothing."""
        return ""

    @abc.abstractmethod
    def process(self, batch: list[Record]) -> list[list[Record]]:
        """Process input records; return, for each input in order, its output records (0, 1 or many).

        Raise to fail the batch: the engine retries its records one at a time and records the ones
        that still fail (with the exception's message as reason) in ``errors.jsonl``.
        """

    def finalize(self, run: "RunDir") -> None:
        """Called once after the merged ``manifest.jsonl`` is written (CSV reports, indexes...)."""

    def cost(self, record: Record) -> float:
        """Relative cost of a record (default: its duration in seconds) for batching and sorting."""
        d = record.get("duration")
        return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else 1.0
