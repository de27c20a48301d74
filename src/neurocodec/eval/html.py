"""The report's HTML page: tables, figures and audio players (reference and each codec)."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

from .report import ConditionSummary


def _rel(path: str | Path, root: Path) -> str:
    return html.escape(os.path.relpath(path, root))


def write_html(out_dir: Path, summaries: Sequence[ConditionSummary], metrics: Sequence[str], plots: dict[str, Path],
               spectrograms: Sequence[Path], audio: dict[str, dict[str, str]], meta: dict) -> Path:
    """Write ``index.html``; ``audio`` maps an item to {condition label or 'reference': wav path}."""
    rows = []
    for s in summaries:
        cells = [s.codec, f"{s.bitrate:g}", f"{s.measured_kbps.mean:.2f}"]
        for m in metrics:
            st = s.metrics[m]
            cells.append("–" if st.n == 0 else f"{st.mean:.3f}" + (f" ± {st.ci95:.3f}" if st.n > 1 else ""))
        cells += [f"{s.encode_rtf:.0f}", f"{s.decode_rtf:.0f}", f"{s.delay_ms:.1f}", f"{s.parameters:,}", str(s.files)]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = ["codec", "nominal kbps", "measured kbps", *metrics, "enc ×RT", "dec ×RT", "delay ms", "params", "files"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>neurocodec evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
        "img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:1em}</style></head><body>",
        "<h1>neurocodec evaluation</h1>",
        f"<p>{html.escape(meta.get('command', ''))}</p>",
        f"<p>{meta.get('files', 0)} files from {html.escape(str(meta.get('data', '')))}; metrics are means with 95% "
        "confidence intervals over files; bitrates are measured from the stored .ncdc files.</p>",
        "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>",
        *rows, "</table>", "<h2>Rate–quality curves</h2><div class='grid'>",
        *[f"<figure><img src='{_rel(p, out_dir)}' alt='{html.escape(m)}'></figure>" for m, p in plots.items()],
        "</div>",
    ]
    if spectrograms:
        parts.append("<h2>Spectrograms</h2>")
        parts += [f"<figure><img src='{_rel(p, out_dir)}'></figure>" for p in spectrograms]
    if audio:
        parts.append("<h2>Listen</h2>")
        for item, players in audio.items():
            parts.append(f"<h3>{html.escape(item)}</h3><table>")
            for label, path in players.items():
                parts.append(f"<tr><th>{html.escape(label)}</th><td><audio controls preload='none' "
                             f"src='{_rel(path, out_dir)}'></audio></td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts))
    return path
