"""Unit quality: purity and PNMI on hand-made distributions, frame labelling by centre time, usage
statistics, and every alignment format (JSONL, CTM-like JSONL, .ctm, TextGrid long/short/UTF-16)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unitwave.units.alignments import load_phone_alignments, read_textgrid
from unitwave.units.corpus import frame_times, runs_of, timestamped
from unitwave.units.quality import cluster_quality, frame_segments, unit_quality


def test_purity_and_pnmi_definitions():
    perfect = np.diag([10, 20, 30])
    q = cluster_quality(perfect)
    assert q["phone_purity"] == q["cluster_purity"] == pytest.approx(1.0) and q["pnmi"] == pytest.approx(1.0)
    independent = np.outer([1, 2, 3], [4, 5])  # units say nothing about phones
    q = cluster_quality(independent)
    assert q["pnmi"] == pytest.approx(0.0, abs=1e-12)
    assert q["phone_purity"] == pytest.approx(3 / 6) and q["cluster_purity"] == pytest.approx(5 / 9)
    # two phones split over four units, each unit pure: phone purity 1, cluster purity 1/2, PNMI 1
    split = np.array([[5, 5, 0, 0], [0, 0, 5, 5]])
    q = cluster_quality(split)
    assert (q["phone_purity"], q["cluster_purity"], q["pnmi"]) == pytest.approx((1.0, 0.5, 1.0))
    # one unit for everything: purity = share of the commonest phone, PNMI 0
    q = cluster_quality(np.array([[3], [1]]))
    assert q["phone_purity"] == pytest.approx(0.75) and q["pnmi"] == pytest.approx(0.0)
    assert q["phone_entropy_bits"] == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_frames_take_the_phone_at_their_centre():
    segs = [(0.0, 0.1, "sil"), (0.1, 0.25, "a"), (0.25, 0.3, "b")]
    centres = np.array([0.05, 0.1, 0.2499, 0.25, 0.31, -0.1])
    assert frame_segments(centres, segs).tolist() == [0, 1, 1, 2, -1, -1]


def test_runs_and_times_of_a_record():
    times = frame_times(5, 0.02, 0.0025)
    assert np.allclose(times[:, 0], [0.0025, 0.0225, 0.0425, 0.0625, 0.0825]) and np.allclose(
        times[:, 1] - times[:, 0], 0.02
    )
    assert runs_of([3, 3, 7, 3, 3], times) == [[3, 0.0025, 0.0425], [7, 0.0425, 0.0625], [3, 0.0625, 0.1025]]
    line = timestamped(
        {
            "id": "u",
            "text": "hi",
            "units": [1, 1, 2],
            "frame_hop_s": 0.01,
            "frame_offset_s": 0.0075,
            "audio_filepath": "a.wav",
            "duration": 0.05,
            "encoder": "mfcc",
            "layer": None,
            "k": 4,
        }
    )
    assert list(line)[:9] == [
        "id",
        "audio_filepath",
        "duration",
        "encoder",
        "layer",
        "k",
        "kmeans_id",
        "frame_hop_s",
        "frame_offset_s",
    ]
    assert line["runs"] == [[1, 0.0075, 0.0275], [2, 0.0275, 0.0375]] and line["text"] == "hi"


def test_unit_quality_over_a_corpus_file(tmp_path):
    # 100 frames of 10 ms: units follow phones exactly except one unit used for two phones
    units = [0] * 30 + [1] * 40 + [1] * 30
    record = timestamped(
        {"id": "u1", "units": units, "frame_hop_s": 0.01, "frame_offset_s": 0.0, "duration": 1.0, "k": 4}
    )
    corpus = tmp_path / "c_corpus_timestamped.jsonl"
    corpus.write_text(json.dumps(record) + "\n" + json.dumps({**record, "id": "unaligned"}) + "\n")
    align = {"u1": [(0.0, 0.3, "sil"), (0.3, 0.7, "a"), (0.7, 1.0, "b")]}
    q = unit_quality(corpus, align)
    assert (q["utterances"], q["aligned_utterances"], q["labelled_frames"], q["phones"]) == (2, 1, 100, 3)
    assert q["phone_purity"] == pytest.approx(0.7) and q["cluster_purity"] == pytest.approx(1.0)
    assert q["dead_units"] == 2 and q["dead_unit_ids"] == [2, 3] and q["used_units"] == 2
    assert q["units_per_second"] == pytest.approx(2.0) and q["mean_run_frames"] == pytest.approx(50)
    assert q["unit_entropy_bits"] == pytest.approx(-(0.3 * math.log2(0.3) + 0.7 * math.log2(0.7)))
    no_sil = unit_quality(corpus, align, ignore=["sil"])
    assert no_sil["labelled_frames"] == 70 and no_sil["phones"] == 2
    with pytest.raises(ValueError, match="no utterance id is in the alignments"):
        unit_quality(corpus, {"other": align["u1"]})


LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.0
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.0
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 1.0
            text = "say ""hi"""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.0
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.25
            text = ""
        intervals [2]:
            xmin = 0.25
            xmax = 0.6
            text = "AH1"
        intervals [3]:
            xmin = 0.6
            xmax = 1.0
            text = "ɪ"
'''

SHORT_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

0
1.0
<exists>
1
"IntervalTier"
"phones"
0
1.0
2
0
0.5
"a"
0.5
1.0
"b"
"""


def test_alignment_formats(tmp_path):
    expected = [(0.0, 0.25, "sil"), (0.25, 0.6, "AH1"), (0.6, 1.0, "ɪ")]
    grids = tmp_path / "grids"
    grids.mkdir()
    (grids / "utt1.TextGrid").write_text(LONG_TEXTGRID, encoding="utf-8")
    (grids / "utt2.TextGrid").write_bytes(SHORT_TEXTGRID.encode("utf-16"))
    found = load_phone_alignments(grids)
    assert found["utt1"] == expected and found["utt2"] == [(0.0, 0.5, "a"), (0.5, 1.0, "b")]
    assert load_phone_alignments(grids / "utt1.TextGrid", tier="words") == {"utt1": [(0.0, 1.0, 'say "hi"')]}
    with pytest.raises(ValueError, match="no interval tier 'tones'"):
        read_textgrid(grids / "utt1.TextGrid", "tones")

    per_utt = tmp_path / "alignments.jsonl"
    per_utt.write_text(json.dumps({"id": "utt1", "phones": [list(s) for s in expected]}) + "\n")
    assert load_phone_alignments(per_utt) == {"utt1": expected}
    segments = tmp_path / "segments.jsonl"
    segments.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"utt": "utt1", "start": 0.6, "end": 1.0, "phone": "ɪ"},
                {"id": "utt1", "start": 0.0, "duration": 0.25, "label": "sil"},
                {"id": "utt1", "start": 0.25, "end": 0.6, "token": "AH1"},
            ]
        )
        + "\n"
    )
    assert load_phone_alignments(segments) == {"utt1": expected}
    ctm = tmp_path / "phones.ctm"
    ctm.write_text(
        ";; comment\nutt1 1 0.00 0.25 sil\nutt1 1 0.25 0.35 AH1 0.9\nutt1 1 0.60 0.40 ɪ\n", encoding="utf-8"
    )
    got = load_phone_alignments(ctm)["utt1"]
    assert [(round(s, 6), round(e, 6), p) for s, e, p in got] == expected
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "start": 0}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_phone_alignments(bad)


def test_bad_segments_are_refused_and_the_report_is_strict_json(tmp_path):
    import json

    from unitwave.units.alignments import read_jsonl_alignments
    from unitwave.units.quality import _finite

    bad = tmp_path / "al.jsonl"
    bad.write_text('{"id": "u", "phones": [[0.0, 0.2, "a"], [0.4, 0.3, "b"]]}\n')
    with pytest.raises(ValueError, match=r"al.jsonl:1: segment 'b' \[0.4, 0.3\] must have 0 <= start < end"):
        read_jsonl_alignments(bad)
    text = json.dumps(_finite({"pnmi": float("nan"), "h": -0.0, "xs": [float("inf"), 1.5]}), allow_nan=False)
    assert json.loads(text) == {"pnmi": None, "h": 0.0, "xs": [None, 1.5]} and "-0.0" not in text
