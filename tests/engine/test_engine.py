"""The engine through its library API: shards, resume, errors, worker death, OOM back-off, fan-out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitwave.data.manifest import read_manifest
from unitwave.engine.batching import Backoff, plan_batches
from unitwave.engine.options import EngineConfig
from unitwave.engine.run_dir import RunDir, RunDirError, ShardBusyError, lock_shard
from unitwave.engine.runner import run_stage
from unitwave.engine.status import status_table
from unitwave.testing.stages import EchoStage, FanOutStage, MemoryBoundStage


def records(n: int, prefix: str = "r") -> list[dict]:
    return [{"id": f"{prefix}{i:04d}", "audio_filepath": f"/x/{i}.wav", "duration": 1.0 + (i % 7), "keep": i}
            for i in range(n)]


def run(stage, recs, out, **engine):
    return run_stage(stage, lambda: iter(recs), out, EngineConfig(progress=False, **engine))


def manifest(out: Path) -> list[dict]:
    return list(read_manifest(out / "manifest.jsonl"))


def test_merge_keeps_input_order_and_fields(tmp_path):
    recs = records(50)
    s = run(EchoStage(), recs, tmp_path, workers=1, shards=4)
    assert s.exit_code == 0 and s.processed == 50 and s.complete
    out = manifest(tmp_path)
    assert [r["id"] for r in out] == [r["id"] for r in recs]
    assert all(o["keep"] == r["keep"] for o, r in zip(out, recs))
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["num_shards"] == 4 and info["input_records"] == 50


def test_rerun_resumes_and_pins_shards(tmp_path):
    recs = records(30)
    run(EchoStage(), recs, tmp_path, workers=1, shards=3)
    first = (tmp_path / "manifest.jsonl").read_bytes()
    s = run(EchoStage(), recs, tmp_path, workers=1)
    assert s.processed == 0 and s.skipped == 30
    assert (tmp_path / "manifest.jsonl").read_bytes() == first
    with pytest.raises(RunDirError, match="started with 3 shards"):
        run(EchoStage(), recs, tmp_path, workers=1, shards=5)


def test_new_inputs_are_processed_on_rerun(tmp_path):
    run(EchoStage(), records(10), tmp_path, workers=1, shards=2)
    s = run(EchoStage(), records(10) + records(5, "new"), tmp_path, workers=1)
    assert s.processed == 5 and s.skipped == 10 and len(manifest(tmp_path)) == 15


def test_partial_shard_resumes_after_torn_line(tmp_path):
    recs = records(20)
    run(EchoStage(), recs, tmp_path, workers=1, shards=1)
    log = tmp_path / "shards" / "0.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:7]) + lines[7][:15])  # a crash mid-write of the 8th record
    (tmp_path / "shards" / "0.done").unlink()
    s = run(EchoStage(), recs, tmp_path, workers=1)
    assert s.processed == 13 and s.skipped == 7
    assert [r["id"] for r in manifest(tmp_path)] == [r["id"] for r in recs]
    assert all(json.loads(line) for line in log.read_text().splitlines())  # torn tail was cut, not appended to


def test_failures_are_recorded_retried_and_budgeted(tmp_path):
    recs = records(12)
    bad = ("r0003", "r0007")
    s = run(EchoStage(fail_ids=bad), recs, tmp_path, workers=1, shards=2)
    assert s.failed == 2 and s.exit_code == 1 and len(manifest(tmp_path)) == 10
    assert "(more than --max-failures 0: exit status 1)" in s.line()
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert {e["id"] for e in errors} == set(bad)
    assert all(e["stage"] == "echo" and "bad on purpose" in e["reason"] and e["path"] for e in errors)
    assert run(EchoStage(fail_ids=bad), recs, tmp_path, workers=1, max_failures=2).exit_code == 0
    # the cause is fixed: the rerun retries only the failed records
    s = run(EchoStage(), recs, tmp_path, workers=1)
    assert s.processed == 2 and s.failed == 0 and s.exit_code == 0
    assert (tmp_path / "errors.jsonl").read_text() == "" and len(manifest(tmp_path)) == 12


def test_one_bad_record_does_not_fail_its_batch(tmp_path):
    recs = records(16)
    s = run(EchoStage(batch_seconds=30.0, fail_ids=("r0005",)), recs, tmp_path, workers=1, shards=1)
    assert s.failed == 1 and len(manifest(tmp_path)) == 15


def test_dead_worker_fails_its_shard_without_hanging(tmp_path):
    recs = records(40)
    s = run(EchoStage(sleep_seconds=0.01, die_on_ids=("r0011",)), recs, tmp_path, workers=2, shards=4)
    assert s.exit_code == 1 and not s.complete and len(s.failed_shards) == 1
    dead = s.failed_shards[0]
    states = {st.shard: st.state for st in RunDir(tmp_path).shard_states()}
    assert states[dead] == "partial" and sum(v == "done" for v in states.values()) == 3
    s = run(EchoStage(), recs, tmp_path, workers=2)
    assert s.complete and s.exit_code == 0
    assert [r["id"] for r in manifest(tmp_path)] == [r["id"] for r in recs]


def test_workers_run_setup_once_and_use_several_processes(tmp_path):
    recs = records(24)
    run(EchoStage(sleep_seconds=0.02), recs, tmp_path, workers=2, shards=6)
    out = manifest(tmp_path)
    assert {r["setup_calls"] for r in out} == {1}  # six shards, one setup per worker


def test_oom_backoff_halves_batches_down_to_what_fits(tmp_path):
    recs = [{"id": f"r{i}", "duration": 2.0} for i in range(20)] + [{"id": "huge", "duration": 50.0}]
    s = run(MemoryBoundStage(capacity_seconds=8.0, batch_seconds=40.0), recs, tmp_path, workers=1, shards=1)
    out = manifest(tmp_path)
    assert s.failed == 1 and {r["id"] for r in out} == {f"r{i}" for i in range(20)}
    assert max(r["batch_size"] for r in out) <= 4
    err = json.loads((tmp_path / "errors.jsonl").read_text())
    assert err["id"] == "huge" and "out of memory" in err["reason"].lower()


def test_batches_are_sorted_and_capped_by_padded_seconds():
    items = [1.0, 9.0, 3.0, 3.0, 2.0, 8.0]
    batches = plan_batches(items, float, max_cost=12.0, max_items=10)
    assert sorted(x for b in batches for x in b) == sorted(items)
    assert all(max(b) * len(b) <= 12.0 or len(b) == 1 for b in batches)
    assert batches[0] == [9.0]


def test_backoff_isolates_errors_per_item():
    def fn(batch):
        if 3 in batch:
            raise ValueError("3 is bad")
        return [x * 2 for x in batch]

    out = Backoff().run(fn, [1, 2, 3, 4])
    assert out[:2] == [2, 4] and isinstance(out[2], ValueError) and out[3] == 8


def test_fan_out_records_commit_together_and_repeated_inputs_run_once(tmp_path):
    recs = records(5) + [records(1)[0]]  # a repeated input line
    s = run(FanOutStage(parts=3), recs, tmp_path, workers=1, shards=2)
    ids = [r["id"] for r in manifest(tmp_path)]
    assert s.processed == 5 and len(ids) == 15 == len(set(ids))
    assert ids[:3] == ["r0000_0", "r0000_1", "r0000_2"]


def test_merged_manifest_is_deduplicated_by_output_id(tmp_path):
    s = run(FanOutStage(parts=2, id_format="part{part}"), records(4), tmp_path, workers=1, shards=2)
    assert [r["id"] for r in manifest(tmp_path)] == ["part0", "part1"] and s.duplicates == 6


def test_single_shard_runs_then_merge(tmp_path):
    recs = records(30)
    ref = tmp_path / "ref"
    run(EchoStage(), recs, ref, workers=1, shards=3)
    out = tmp_path / "sharded"
    for k in range(3):
        s = run(EchoStage(), recs, out, workers=1, shard=f"{k}/3")
        assert s.complete == (k == 2)
    assert (out / "manifest.jsonl").read_bytes() == (ref / "manifest.jsonl").read_bytes()
    with pytest.raises(RunDirError, match="started with 3 shards"):
        run(EchoStage(), recs, out, workers=1, shard="0/4")
    with pytest.raises(ValueError, match="k/N"):
        run(EchoStage(), recs, out, workers=1, shard="zero")


def test_a_shard_has_one_writer(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.shards_dir.mkdir(parents=True)
    with lock_shard(run_dir.shard_log(0)):
        with pytest.raises(ShardBusyError, match="another process"):
            lock_shard(run_dir.shard_log(0))


def test_status_reports_states_counts_and_hours(tmp_path):
    recs = records(20)
    run(EchoStage(fail_ids=("r0001",)), recs, tmp_path, workers=1, shards=2)
    text, states = status_table(RunDir(tmp_path))
    assert sum(s.records for s in states) == 19 and sum(s.errors for s in states) == 1
    assert "2/2 shards done" in text and "audio h" in text
    assert abs(sum(s.audio_seconds for s in states) - sum(r["duration"] for r in recs if r["id"] != "r0001")) < 1e-6


def test_a_refused_rerun_leaves_the_saved_config_alone(tmp_path):
    from dataclasses import dataclass

    from unitwave.config import read_yaml

    @dataclass(frozen=True)
    class Cfg:
        engine: EngineConfig = EngineConfig()

    recs = records(6)
    run_stage(EchoStage(), lambda: iter(recs), tmp_path, EngineConfig(progress=False, workers=1, shards=3),
              config=Cfg(EngineConfig(shards=3)))
    with pytest.raises(RunDirError, match="started with 3 shards"):
        run_stage(EchoStage(), lambda: iter(recs), tmp_path, EngineConfig(progress=False, workers=1, shards=5),
                  config=Cfg(EngineConfig(shards=5)))
    assert read_yaml(tmp_path / "config.yaml")["engine"]["shards"] == 3  # still feeds back with --config


def test_another_stage_never_resumes_a_run_folder(tmp_path):
    recs = records(6)
    run(EchoStage(), recs, tmp_path, workers=1, shards=2)
    before = (tmp_path / "manifest.jsonl").read_bytes()
    with pytest.raises(RunDirError, match="holds a `echo` run, not a `fan-out` one"):
        run(FanOutStage(), recs, tmp_path, workers=1)
    assert (tmp_path / "manifest.jsonl").read_bytes() == before


def test_records_removed_from_the_input_leave_manifest_and_errors(tmp_path):
    recs = records(10)
    s = run(EchoStage(fail_ids=("r0003",)), recs, tmp_path, workers=1, shards=2)
    assert s.failed == 1 and s.exit_code == 1
    # the user deletes the bad file and drops one more, and a new file sorts first: rerun
    kept = [{"id": "a_new", "audio_filepath": "/x/new.wav", "duration": 1.0}] + [
        r for r in recs if r["id"] not in ("r0003", "r0005")
    ]
    s = run(EchoStage(), kept, tmp_path, workers=1)
    assert s.exit_code == 0 and s.failed == 0 and s.processed == 1
    assert [r["id"] for r in manifest(tmp_path)] == [r["id"] for r in kept]
    assert (tmp_path / "errors.jsonl").read_text() == ""


class _UnwritableOutputStage(EchoStage):
    """Gives one record an output field JSON cannot hold (a stage bug that shows on some records only)."""

    def process(self, batch):
        return [[{**r, "bad": {1, 2}} if r["id"] == "r0002" else r] for r in batch]


def test_an_output_json_cannot_hold_fails_its_record_not_the_shard(tmp_path):
    s = run(_UnwritableOutputStage(), records(8), tmp_path, workers=1, shards=1)
    assert s.complete and s.failed == 1 and len(manifest(tmp_path)) == 7
    err = json.loads((tmp_path / "errors.jsonl").read_text())
    assert err["id"] == "r0002" and "not JSON" in err["reason"]


def test_initial_batch_seconds_follow_free_device_memory(monkeypatch):
    import torch

    from unitwave.engine.batching import initial_batch_seconds

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert initial_batch_seconds(seconds_per_gib=40.0, default=60.0) == 60.0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (10 * 2**30, 80 * 2**30))
    assert initial_batch_seconds(seconds_per_gib=40.0, default=60.0) == pytest.approx(0.8 * 10 * 40.0)
    assert initial_batch_seconds(seconds_per_gib=40.0, default=60.0, device="cpu") == 60.0


def test_the_shard_task_that_merges_exits_by_its_own_shard(tmp_path):
    from unitwave.data.records import shard_of

    recs = records(12)
    bad = recs[0]["id"]
    first = shard_of(bad, 2)
    s = run(EchoStage(fail_ids=(bad,)), recs, tmp_path, workers=1, shard=f"{first}/2")
    assert s.failed == 1 and s.exit_code == 1 and not s.complete
    s = run(EchoStage(fail_ids=(bad,)), recs, tmp_path, workers=1, shard=f"{1 - first}/2")
    assert s.complete and s.failed == 0 and s.exit_code == 0  # its shard is clean; it merged both
    assert [json.loads(x)["id"] for x in (tmp_path / "errors.jsonl").read_text().splitlines()] == [bad]


def test_a_stage_calling_sys_exit_fails_only_that_record(tmp_path):
    recs = records(40)
    s = run(EchoStage(exit_on_ids=("r0003",)), recs, tmp_path, workers=2, shards=8)
    assert s.complete and not s.failed_shards and s.failed == 1  # its shard and worker carry on
    assert len(manifest(tmp_path)) == 39
    error = json.loads((tmp_path / "errors.jsonl").read_text())
    assert error["id"] == "r0003" and error["error_type"] == "SystemExit"

@pytest.mark.parametrize("option, value, message", [
    ("workers", -3, "--workers must be >= 0"),
    ("shards", 0, "--shards must be >= 1"),
    ("max_failures", -1, "--max-failures must be >= 0"),
    ("torch_threads", 0, "--torch-threads must be >= 1"),
    ("shard", "5/2", "need 0 <= k < N"),
])
def test_engine_options_that_cannot_work_are_refused_before_anything_runs(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=message):
        run(EchoStage(), records(3), tmp_path / "out", **{option: value})
    assert not (tmp_path / "out").exists()


def test_status_of_a_folder_holding_run_folders_names_them(tmp_path):
    run(EchoStage(), records(3), tmp_path / "outputs" / "corpus_2026-01-01")
    with pytest.raises(RunDirError, match="the run folders inside it: corpus_2026-01-01"):
        status_table(RunDir(tmp_path / "outputs"))


def test_status_and_counts_follow_the_current_input(tmp_path):
    recs = records(6)
    run(EchoStage(), recs, tmp_path, workers=1, shards=2)
    changed = [{**r, "keep": -1} for r in recs[:4]] + recs[4:]  # four records changed under their ids
    states = RunDir(tmp_path).shard_states()
    assert sum(s.records for s in states) == 6
    run_dir = RunDir(tmp_path)
    run_dir.prepare("echo", changed, None, lambda n: 2)
    assert sum(s.records for s in run_dir.shard_states()) == 2  # stale results are not counted as done
    s = run(EchoStage(), changed, tmp_path, workers=1)
    assert (s.processed, s.skipped) == (4, 2)
    # repeated ids: the count in the summary follows the input, up and down
    s = run(EchoStage(), changed + [changed[0]], tmp_path, workers=1)
    assert s.duplicate_ids == 1
    s = run(EchoStage(), changed, tmp_path, workers=1)
    assert s.duplicate_ids == 0 and "left out" not in s.line()


def test_folder_ids_never_collide(tmp_path):
    import soundfile as sf

    from unitwave.data.inputs import iter_folder
    from unitwave.testing.fixtures import tone

    for name in ("a.flac", "a.wav", "a.wav.flac", "b.wav"):
        sf.write(tmp_path / name, tone(0.2), 16000)
    ids = [r["id"] for r in iter_folder(tmp_path)]
    assert ids == ["a", "a.wav", "a.wav.flac", "b"]
