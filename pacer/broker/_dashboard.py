"""The read-only dashboard page: server-rendered HTML, no scripts, refreshed by the browser every 5 s."""

from __future__ import annotations

from html import escape
from typing import Any

_STATES = ("pending", "in_progress", "succeeded", "failed")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f6f7f9; }
h1 { font-size: 22px; margin: 0 0 4px; } .sub { color: #5b6475; margin-bottom: 20px; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 16px; margin-bottom: 16px; }
h2 { font-size: 17px; margin: 0 0 10px; } table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: right; padding: 6px 10px; border-bottom: 1px solid #eceef2; }
th:first-child, td:first-child, .owner { text-align: left; } th { color: #5b6475; font-weight: 600; }
tr.total td { font-weight: 600; } .paused { color: #b54708; } .meta { color: #5b6475; font-size: 13px; }
"""


def render_dashboard(view: dict[str, Any]) -> str:
    sections = [_queue_section(queue) for queue in view["queues"]] or ["<section><p>No queues yet.</p></section>"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'><title>Pacer</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Pacer</h1>"
        f"<div class='sub'>served by {escape(str(view['broker']))} · {len(view['queues'])} queue(s)</div>"
        + "".join(sections)
        + "</body></html>"
    )


def _queue_section(queue: dict[str, Any]) -> str:
    rate = queue["max_jobs_per_second"]
    limit = "unlimited" if rate is None else ("<span class='paused'>paused</span>" if rate == 0 else f"{rate:g} jobs/s")
    header = "".join(f"<th>{escape(s.replace('_', ' '))}</th>" for s in _STATES)
    rows, totals = [], dict.fromkeys(_STATES, 0)
    for part in queue["partitions"]:
        for state in _STATES:
            totals[state] += int(part["counts"].get(state, 0))
        age = part["oldest_pending_age_s"]
        rows.append(
            f"<tr data-partition='{part['partition']}'><td>{part['partition']}</td><td>{part['shard']}</td>"
            f"<td class='owner'>{escape(str(part['owner'] or '—'))}</td><td>{part['epoch']}</td>"
            + "".join(f"<td>{int(part['counts'].get(s, 0))}</td>" for s in _STATES)
            + f"<td>{part['finished_per_s']:g}</td><td>{'—' if age is None else f'{age:g} s'}</td></tr>"
        )
    total = "".join(f"<td>{totals[s]}</td>" for s in _STATES)
    return (
        f"<section data-queue='{escape(queue['name'])}'><h2>{escape(queue['name'])}</h2>"
        f"<div class='meta'>rate limit: {limit} · lease {queue['lease_s']:g} s</div>"
        "<table><tr><th>partition</th><th>shard</th><th class='owner'>owner</th><th>epoch</th>"
        f"{header}<th>finished/s (1 min)</th><th>oldest pending</th></tr>"
        + "".join(rows)
        + f"<tr class='total'><td>all</td><td></td><td></td><td></td>{total}<td></td><td></td></tr></table></section>"
    )
