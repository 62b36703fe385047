"""Manifests: streaming round trips, malformed and torn lines, ids, paths, splits (hypothesis)."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitwave.data.manifest import ManifestWriter, ReadStats, read_manifest, resolve_audio, write_manifest
from unitwave.data.paths import UnsafePathError, relative_output_path, safe_join
from unitwave.data.records import derive_id, ensure_id, shard_of
from unitwave.data.split import split_manifest, split_of

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
records = st.lists(
    st.fixed_dictionaries(
        {"audio_filepath": st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s),
         "duration": st.floats(0, 1e4, allow_nan=False)},
        optional={"text": st.text(max_size=40), "offset": st.floats(0, 100, allow_nan=False),
                  "speaker": st.text(max_size=8), "extra_field": st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)},
    ),
    max_size=30,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=records)
def test_round_trip_keeps_every_field(tmp_path, recs):
    path = tmp_path / "m.jsonl"
    write_manifest(path, recs)
    assert list(read_manifest(path)) == recs


@settings(max_examples=60)
@given(path=st.text(min_size=1, max_size=40), offset=st.one_of(st.none(), st.floats(0, 1e5, allow_nan=False)))
def test_derived_ids_are_stable_and_depend_on_offset(path, offset):
    a = ensure_id({"audio_filepath": path, "offset": offset})["id"]
    assert a == derive_id(path, offset) == ensure_id({"audio_filepath": path, "offset": offset})["id"]
    assert derive_id(path, (offset or 0) + 1.0) != a


def test_given_ids_are_kept_and_stringified():
    assert ensure_id({"id": 7, "audio_filepath": "a.wav"})["id"] == "7"
    assert ensure_id({"id": "x", "audio_filepath": "a.wav"})["id"] == "x"
    with pytest.raises(ValueError, match="neither 'id' nor 'audio_filepath'"):
        ensure_id({"text": "no path"})


def test_malformed_and_torn_lines_are_skipped_with_file_and_line(tmp_path, caplog):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\nnot json\n[1, 2]\n\n{"id": "b"}\n{"id": "c", "tor', encoding="utf-8")
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="unitwave"):
        ids = [r["id"] for r in read_manifest(path, stats)]
    assert ids == ["a", "b"]
    assert stats.malformed == 3
    assert f"{path}:2" in caplog.text and f"{path}:3" in caplog.text and "torn final line" in caplog.text


def test_atomic_writer_leaves_old_file_on_error(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [{"id": "old"}])
    with pytest.raises(RuntimeError):
        with ManifestWriter(path) as w:
            w.write({"id": "new"})
            raise RuntimeError("crash")
    assert [r["id"] for r in read_manifest(path)] == ["old"]
    assert not list(tmp_path.glob(".*tmp"))


def test_relative_and_absolute_output_paths(tmp_path):
    out = tmp_path / "out" / "m.jsonl"
    audio = tmp_path / "out" / "audio" / "x.wav"
    elsewhere = tmp_path / "elsewhere.wav"
    with ManifestWriter(out, absolute_paths=False) as w:
        w.write({"audio_filepath": str(audio)})
        w.write({"audio_filepath": str(elsewhere)})
    rel = [r["audio_filepath"] for r in read_manifest(out)]
    assert rel == ["audio/x.wav", str(elsewhere)]
    assert resolve_audio(rel[0], out.parent) == audio
    with ManifestWriter(out, absolute_paths=True) as w:
        w.write({"audio_filepath": "audio/x.wav"})
    assert next(read_manifest(out))["audio_filepath"] == str(audio)


def test_output_paths_never_escape(tmp_path):
    root = tmp_path / "in"
    assert str(relative_output_path(root / "a" / "b.wav", root)) == "a/b.wav"
    with pytest.raises(UnsafePathError, match="outside"):
        relative_output_path(tmp_path / "x.wav", root)
    with pytest.raises(UnsafePathError, match="outside"):
        relative_output_path(root / ".." / "x.wav", root)
    for bad in ("../x.wav", "/etc/passwd", "a/../../x.wav"):
        with pytest.raises(UnsafePathError):
            safe_join(tmp_path / "out", bad)


@settings(max_examples=30)
@given(ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=200, unique=True),
       n=st.integers(1, 17))
def test_shards_partition_ids(ids, n):
    shards = [shard_of(i, n) for i in ids]
    assert all(0 <= s < n for s in shards)
    assert shards == [shard_of(i, n) for i in ids]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=300, unique=True))
def test_split_is_deterministic_and_stable_under_additions(ids):
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    first = {i: split_of(i, ratios) for i in ids}
    assert first == {i: split_of(i, ratios) for i in reversed(ids)}
    assert set(first.values()) <= set(ratios)


def test_split_ratios_and_files(tmp_path):
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, ({"id": f"u{i}", "audio_filepath": f"a/{i}.wav"} for i in range(20000)))
    counts = split_manifest(manifest, tmp_path / "splits", {"train": 0.9, "val": 0.05, "test": 0.05})
    assert counts["train"] + counts["val"] + counts["test"] == 20000
    assert abs(counts["val"] / 20000 - 0.05) < 0.01 and abs(counts["train"] / 20000 - 0.9) < 0.01
    train = [json.loads(line) for line in (tmp_path / "splits" / "train.jsonl").open()]
    assert all(split_of(r["id"], {"train": 0.9, "val": 0.05, "test": 0.05}) == "train" for r in train[:500])
    # relative paths were resolved against the input manifest's folder, then written relative to the output
    assert train[0]["audio_filepath"] == str(tmp_path / "a" / train[0]["audio_filepath"].split("/")[-1])


def test_undecodable_lines_are_skipped_like_other_malformed_ones(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"id": "a"}\n\xae\xff binary\n{"id": "b"}\n')
    stats = ReadStats()
    assert [r["id"] for r in read_manifest(path, stats)] == ["a", "b"] and stats.malformed == 1


def test_a_folder_or_an_audio_file_is_not_taken_for_a_manifest(tmp_path):
    from unitwave.data.inputs import iter_inputs

    (tmp_path / "a.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match="is a folder; a JSONL manifest"):
        read_manifest(tmp_path)
    with pytest.raises(ValueError, match="is an audio file"):
        iter_inputs(tmp_path / "a.wav")


def test_split_names_stay_inside_the_output_folder_and_bad_records_are_skipped(tmp_path):
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [{"id": "a"}, {"text": "neither id nor path"}, {"id": "b"}])
    with pytest.raises(ValueError, match="plain file names"):
        split_manifest(manifest, tmp_path / "out", {"train": 0.5, "../escape": 0.5})
    assert not (tmp_path / "escape.jsonl").exists() and not (tmp_path / "out").exists()
    counts = split_manifest(manifest, tmp_path / "out", {"train": 1.0})
    assert counts == {"train": 2, "malformed_lines": 1, "segmented": 0}


def test_split_by_group_keeps_segments_of_a_recording_together(tmp_path):
    from unitwave.prepare.split import SplitConfig, run

    manifest = tmp_path / "m.jsonl"
    rows = [{"id": f"s{i}_{j}", "audio_filepath": f"a/{i}_{j}.wav", "source_id": f"s{i}"}
            for i in range(40) for j in range(5)]
    rows.append({"id": "lone", "audio_filepath": None})  # a null path passes through
    write_manifest(manifest, rows)
    ratios = {"train": 0.5, "test": 0.5}
    counts = split_manifest(manifest, tmp_path / "by_id", ratios)
    assert counts["segmented"] == 200
    counts = split_manifest(manifest, tmp_path / "by_source", ratios, group_by="source_id")
    assert counts["ungrouped"] == 1 and counts["train"] + counts["test"] == 201
    where = {}
    for name in ratios:
        for line in (tmp_path / "by_source" / f"{name}.jsonl").open():
            rec = json.loads(line)
            where.setdefault(rec.get("source_id"), set()).add(name)
    assert all(len(v) == 1 for k, v in where.items() if k) and len(where) == 41
    by_id = {json.loads(line).get("source_id") for line in (tmp_path / "by_id" / "train.jsonl").open()}
    by_id_test = {json.loads(line).get("source_id") for line in (tmp_path / "by_id" / "test.jsonl").open()}
    assert by_id & by_id_test  # by id, some recordings straddle the splits: why --group-by exists
    with pytest.raises(ValueError, match="would be overwritten by its own split"):
        run(SplitConfig(manifest, tmp_path, names=("m", "other"), ratios=(1, 1)))
    with pytest.raises(ValueError, match="--names must be distinct"):
        run(SplitConfig(manifest, tmp_path / "x", names=("a", "a"), ratios=(1, 1)))
