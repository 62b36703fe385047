"""The engine: runs a per-record stage over a manifest in shards, resumably, on a chosen backend."""

from unitwave.engine.options import EngineConfig
from unitwave.engine.run_dir import RunDir
from unitwave.engine.stage import Stage

__all__ = ["EngineConfig", "RunDir", "Stage"]
