"""HTML for notebooks that reads the same in an untrusted notebook: every style inline.

JupyterLab (and GitHub, nbviewer) sanitize the HTML of a notebook someone else ran:
`<style>` and `<script>` are dropped, inline `style` attributes are kept. So the
summary and the reports style each element inline, and a frame is drawn here rather
than by polars' own `_repr_html_`, which starts with a `<style>` block.
"""

from __future__ import annotations

import html
from typing import Any

CELL = "padding:1px 8px;text-align:left;vertical-align:top"
BAD = "color:#b00020;font-weight:600"
FAILED = "color:#8a6d00"
_TABLE = "border-collapse:collapse;font-size:12px"
_FRAME_CELL = "padding:1px 6px;text-align:left;vertical-align:top;white-space:pre-wrap"
_VALUE_LIMIT = 200  # characters of one value shown; a frame cell is a glance, not the data


def sections_html(title: str, sections: list) -> str:
    """Summary sections (`analysis.summary.Section`) as an HTML table: findings in red,
    failed sections in amber."""
    rows = []
    for sec in sections:
        name = html.escape(sec.name)
        if sec.error:
            body = (
                f'<span class="failed" style="{FAILED}">section failed: {html.escape(sec.error)}'
                "</span>"
            )
        else:
            style = f' style="{BAD}"' if sec.count else ""
            body = f"<span{style}>{html.escape(sec.headline)}</span>"
            if sec.items:
                more = (
                    f"<li>… {sec.count - len(sec.items)} more</li>"
                    if sec.count > len(sec.items)
                    else ""
                )
                body += (
                    '<ul style="margin:0;padding-left:1.2em">'
                    + "".join(f"<li><code>{html.escape(i)}</code></li>" for i in sec.items)
                    + more
                    + "</ul>"
                )
        rows.append(
            f'<tr data-section="{name}"><th style="{CELL}">{name}</th><td '
            f'style="{CELL}">{body}</td></tr>'
        )
    return f'<div class="scope-sum"><b>{html.escape(title)}</b><table>{"".join(rows)}</table></div>'


def _value(v: Any) -> str:
    text = "null" if v is None else str(v)
    if len(text) > _VALUE_LIMIT:
        text = text[: _VALUE_LIMIT - 1] + "…"
    return html.escape(text)


def frame_html(frame, rows: int = 20) -> str:
    """The first `rows` rows of a polars frame as an HTML table ("" for no frame or no
    rows), with how many rows were left out."""
    if frame is None or frame.height == 0:
        return ""
    head = "".join(f'<th style="{_FRAME_CELL}">{html.escape(c)}</th>' for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_FRAME_CELL}">{_value(v)}</td>' for v in row) + "</tr>"
        for row in frame.head(rows).iter_rows()
    )
    more = (
        (
            f'<tr><td colspan="{frame.width}" style="{_FRAME_CELL}"><i>… {frame.height - rows:,} '
            "more "
            f"rows</i></td></tr>"
        )
        if frame.height > rows
        else ""
    )
    return f'<table class="scope-frame" style="{_TABLE}"><tr>{head}</tr>{body}{more}</table>'


__all__ = ["CELL", "BAD", "FAILED", "sections_html", "frame_html"]
