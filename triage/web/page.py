"""The HTML of the page and the login form. Scripts and styles are files of this package
(``assets/``) served from ``/assets/…``, so the page runs under a Content-Security-Policy that
allows nothing from anywhere else."""

from __future__ import annotations

from html import escape
from importlib import resources

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
ASSET_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def asset(name: str) -> bytes | None:
    if name not in ASSET_TYPES:
        return None
    return (resources.files("triage.web") / "assets" / name).read_bytes()


def _card(figure: str, label: str, css: str = "") -> str:
    return (f'<div class="card {css}"><div class="label">{escape(label)}</div>'
            f'<div class="value" data-figure="{figure}">–</div></div>')


def _table(id_: str, key: str) -> str:
    return (f'<table id="table-{id_}"><thead><tr><th>{escape(key)}</th><th class="n">suppressed'
            f'</th><th class="n">raised</th><th class="n">invalid</th><th class="n">total</th>'
            f'</tr></thead><tbody></tbody></table>')


def dashboard(poll_ms: int = 5000) -> str:
    cards = "".join((
        _card("total", "decisions (events)"), _card("suppressed", "suppressed", "suppressed"),
        _card("raised", "raised", "raised"), _card("invalid", "invalid"),
        _card("suppression_rate", "suppression rate"),
        _card("tasks_created", "tasks created"), _card("tasks_delivered", "tasks delivered"),
        _card("open_household_moves", "open household moves"),
        _card("waiting_events", "events waiting for them"),
        _card("dead_letters", "dead letters (invalid)", "alert"),
        _card("could_not_check", "could not check", "alert"),
        _card("late_events", "late events", "alert"),
        _card("shadow_disagreements", "shadow disagreements", "alert"),
        _card("lookup_failures", "case-system lookups failed", "alert"),
        _card("tasks_delivery_failed", "deliveries failed", "alert"),
        _card("dead_letters_other", "dead letters (oversized, conflict)", "alert"),
        _card("consumer_lag", "consumer lag (records)")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Triage — suppressed versus raised</title>
<link rel="stylesheet" href="/assets/dashboard.css"></head>
<body data-poll-ms="{poll_ms}">
<header><h1>Triage</h1>
<span class="meta">active ruleset <code id="ruleset-active">–</code></span>
<span class="meta">shadow ruleset <code id="ruleset-shadow">–</code></span>
<span class="meta" id="log-state"></span>
<span class="meta">updated <span id="updated">–</span> <span id="status"></span></span>
</header>
<main>
<section><h2>Figures</h2><div class="cards">{cards}</div>
<p class="muted">Decisions are counted once per event id from the decision log; live figures
(moves, waiting events, deliveries, late events, lag) come from this worker.</p></section>
<section><h2>Decision explorer</h2>
<form class="explore" id="explore"><select id="explore-kind"><option value="event">event id
</option><option value="case">case id</option></select>
<input id="explore-id" name="id" autocomplete="off" placeholder="event or case id">
<button type="submit" id="explore-go">Find</button></form>
<div id="explore-result"></div></section>
<section><h2>Suppressed versus raised over time</h2>
<div class="controls"><label>by <select id="clock"><option value="registered_at">event time
(registered_at)</option><option value="decided_at">decision time</option></select></label>
<label>per <select id="bucket"><option value="hour">hour</option><option value="day">day
</option></select></label></div>
<div class="chart" id="chart-series"></div></section>
<div class="charts">
<section class="chart"><div id="chart-rule"></div></section>
<section class="chart"><div id="chart-type"></div></section>
<section class="chart"><div id="chart-unit"></div></section>
</div>
<div class="tables">
<section><h2>By rule</h2>{_table("rule", "rule")}</section>
<section><h2>By event type</h2>{_table("type", "type")}</section>
<section><h2>By owning unit</h2>{_table("unit", "unit")}</section>
<section><h2>By ruleset version</h2>{_table("ruleset", "ruleset")}</section>
</div>
</main>
<script src="/assets/dashboard.js"></script>
</body></html>"""


def login(failed: bool = False) -> str:
    message = '<p class="error">That token is not valid.</p>' if failed else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Triage — sign in</title>
<link rel="stylesheet" href="/assets/dashboard.css"></head>
<body><section class="login"><h2>Triage dashboard</h2>
<p>The page shows case ids: sign in with the viewer token.</p>{message}
<form method="post" action="/login"><input type="password" name="token" id="token"
autocomplete="current-password" placeholder="viewer token" required>
<button type="submit" id="login">Sign in</button></form></section></body></html>"""
