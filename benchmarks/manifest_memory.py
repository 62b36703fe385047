"""Manifest streaming memory: read, filter and write a 1,000,000-record manifest.

Baseline (same run): the same job done the naive way, ``[json.loads(l) for l in open(...)]``.
Target: streaming peak RSS < 200 MB.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import peak_rss_mb, report

N = 1_000_000


def main() -> None:
    from unitwave.data.manifest import write_manifest

    tmp = Path(tempfile.mkdtemp(prefix="uw-bench-"))
    src = tmp / "big.jsonl"
    write_manifest(src, ({"id": f"utt{i:07d}", "audio_filepath": f"audio/spk{i % 97}/utt{i:07d}.wav",
                          "duration": 1.0 + (i % 300) / 10, "text": "uma frase de exemplo " * 2,
                          "speaker": f"spk{i % 97}"} for i in range(N)))
    streaming = peak_rss_mb(f"""
from unitwave.data.manifest import read_manifest, write_manifest
n = write_manifest({str(tmp / 'out.jsonl')!r}, (r for r in read_manifest({str(src)!r}) if r['duration'] < 20.0))
""")
    naive = peak_rss_mb(f"""
import json
recs = [json.loads(l) for l in open({str(src)!r})]
kept = [r for r in recs if r['duration'] < 20.0]
with open({str(tmp / 'naive.jsonl')!r}, 'w') as f:
    for r in kept: f.write(json.dumps(r) + '\\n')
""")
    baseline_interpreter = peak_rss_mb("import unitwave.data.manifest")
    report("manifest_memory", {
        "records": N,
        "file_mb": round(src.stat().st_size / 2**20, 1),
        "streaming_peak_rss_mb": round(streaming, 1),
        "naive_peak_rss_mb": round(naive, 1),
        "interpreter_rss_mb": round(baseline_interpreter, 1),
        "ratio_streaming_vs_naive": round(streaming / naive, 3),
    }, "streaming peak RSS < 200 MB")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    sys.exit(main())
