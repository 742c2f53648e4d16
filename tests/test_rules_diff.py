"""``triage rules diff``: a draft built from rules/default.yaml, backtested against a simulated
year, checked against two plain replays (one per ruleset); risk and the --fail-on-risk exit; the
same history read from the journal topic on the embedded broker; the HTML report."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections import Counter
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.drafts import LOWERED, draft_text
from triage.cli import main
from triage.rules import DEFAULT_RULES, load_ruleset
from triage.simulate import simulate
from triage.stream.settings import KIND_HEADER, TICK

EVENTS = 30_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("diff-corpus")
    simulate(folder, seed=3, events=EVENTS)
    (folder / "draft.yaml").write_bytes(draft_text(scores=LOWERED))
    (folder / "same.yaml").write_bytes(DEFAULT_RULES.read_bytes())
    return folder


def triage(*args: str | Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = main([str(a) for a in args])
    return status, out.getvalue()


def diff(corpus: Path, *extra: str | Path, draft: str = "draft.yaml",
         events: Path | None = None) -> tuple[int, dict, str]:
    report = corpus / f"report-{len(extra)}-{draft}.json"
    status, output = triage("rules", "diff", "--draft", corpus / draft,
                            events or corpus / "events.jsonl", "--persons",
                            corpus / "persons.jsonl", "--cases", corpus / "cases.jsonl",
                            "--report", report, "--quiet", *extra)
    return status, orjson.loads(report.read_bytes()) if report.exists() else {}, output


def replay(corpus: Path, rules: Path, name: str) -> dict[str, dict]:
    out = corpus / f"{name}.jsonl"
    status, output = triage("replay", corpus / "events.jsonl", "--persons",
                            corpus / "persons.jsonl", "--cases", corpus / "cases.jsonl",
                            "--rules", rules, "--out", out, "--quiet")
    assert status == 0, output
    return {d["event_id"]: d for d in map(orjson.loads, out.read_bytes().splitlines())
            if d["outcome"] != "invalid"}


@pytest.fixture(scope="module")
def replays(corpus: Path) -> tuple[dict[str, dict], dict[str, dict], dict[str, tuple]]:
    kinds = {}
    for line in (corpus / "events.jsonl").read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
            event = orjson.loads(line)
            kinds[event["event_id"]] = (f"{event['source']}/{event['type']}",
                                        datetime.fromisoformat(event["registered_at"]))
    return (replay(corpus, DEFAULT_RULES, "base"), replay(corpus, corpus / "draft.yaml", "draft"),
            kinds)


def expected_counts(base: dict, draft: dict, kinds: dict, since=None, until=None) -> dict:
    """The report's counts computed from two independent plain replays."""
    verdicts, by_type, by_rule = Counter(), {}, Counter()
    events = 0
    for event_id, b in base.items():
        kind, at = kinds[event_id]
        if (since and at < since) or (until and at >= until):
            continue
        events += 1
        d = draft[event_id]
        assert [v["case_id"] for v in b["cases"]] == [v["case_id"] for v in d["cases"]]
        for bv, dv in zip(b["cases"], d["cases"], strict=True):
            t = f"{bv['outcome']}->{dv['outcome']}"
            verdicts[t] += 1
            by_type.setdefault(kind, Counter())[t] += 1
            by_rule[f"{bv['rule']} -> {dv['rule']}"] += 1
    return {"events": events, "verdicts": verdicts, "by_event_type": by_type,
            "by_rule": by_rule}


def assert_counts(report: dict, expected: dict) -> None:
    assert report["events"] == expected["events"]
    assert report["verdicts"] == {t: expected["verdicts"][t] for t in report["verdicts"]}
    assert sum(report["verdicts"].values()) == sum(expected["verdicts"].values())
    assert {k: {t: n for t, n in v.items() if n} for k, v in report["by_event_type"].items()} \
        == {k: {t: n for t, n in v.items() if n} for k, v in expected["by_event_type"].items()}
    assert report["by_rule"] == dict(expected["by_rule"])
    assert report["risk"] == expected["verdicts"]["raised->suppressed"]


@pytest.mark.slow
def test_the_report_counts_are_those_of_two_plain_replays(corpus, replays):
    status, report, output = diff(corpus)
    assert status == 0, output
    base, draft, kinds = replays
    assert_counts(report, expected_counts(base, draft, kinds))
    assert report["base"] == load_ruleset(DEFAULT_RULES).version
    assert report["draft"] == load_ruleset(corpus / "draft.yaml").version
    assert report["risk"] > 50  # the lowered scores suppress household moves that were raised
    assert report["verdicts"]["suppressed->raised"] > 0  # and raise master-data changes
    assert report["invalid"] > 0 and report["hold_lost"] == 0


@pytest.mark.slow
def test_every_changed_cell_has_examples_that_explain_both_verdicts(corpus, replays):
    _, report, _ = diff(corpus, "--examples", "3")
    base, draft, _ = replays
    cells = set()
    for transition, examples in report["examples"].items():
        for e in examples:
            b = next(v for v in base[e["event_id"]]["cases"] if v["case_id"] == e["case_id"])
            d = next(v for v in draft[e["event_id"]]["cases"] if v["case_id"] == e["case_id"])
            assert transition == f"{b['outcome']}->{d['outcome']}"
            assert (e["base_rule"], e["draft_rule"]) == (b["rule"], d["rule"])
            assert e["base"]["reason"] == b["reason"] and e["draft"]["reason"] == d["reason"]
            assert e["facts"]["event.type"] == e["event_type"].split("/")[1]
            assert e["changes"]
            cells.add((transition, e["base_rule"], e["draft_rule"]))
    changed_cells = {(f"{b['outcome']}->{d['outcome']}", b["rule"], d["rule"])
                     for i, bd in base.items() for b, d in zip(bd["cases"], draft[i]["cases"],
                                                                strict=True)
                     if (b["outcome"], b["score"], b["rule"]) !=
                     (d["outcome"], d["score"], d["rule"])}
    assert cells == changed_cells
    per_cell = Counter((t, e["base_rule"], e["draft_rule"])
                       for t, examples in report["examples"].items() for e in examples)
    assert max(per_cell.values()) == 3
    assert sum(report["changed_by_rule"].values()) == report["changed"]


@pytest.mark.slow
def test_fail_on_risk_exits_1_when_the_draft_suppresses_what_the_base_raises(corpus):
    status, report, _ = diff(corpus, "--fail-on-risk")
    assert (status, report["risk"] > 0) == (1, True)
    status, report, _ = diff(corpus, "--fail-on-risk", draft="same.yaml")
    assert (status, report["risk"], report["changed"]) == (0, 0, 0)
    assert report["examples"] == {t: [] for t in report["verdicts"]}


@pytest.mark.slow
def test_from_and_to_count_only_events_registered_between(corpus, replays):
    since, until = "2025-04-01", "2025-05-01T00:00:00+02:00"
    status, report, output = diff(corpus, "--from", since, "--to", until)
    assert status == 0, output
    base, draft, kinds = replays
    expected = expected_counts(base, draft, kinds, datetime.fromisoformat(since + "T00:00Z"),
                               datetime.fromisoformat(until))
    assert 0 < expected["events"] < len(base) / 4
    assert_counts(report, expected)
    assert (report["from"], report["to"]) == ("2025-04-01T00:00:00+00:00", until)
    assert set(report["raised_per_day"]) <= {f"2025-04-{d:02d}" for d in range(1, 31)}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.urls: list[str] = []
        self.polylines: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        attrs = dict(attrs)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href") and v]
        if tag == "polyline":
            self.polylines[attrs["class"]] = attrs["points"]

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.slow
def test_the_html_report_is_self_contained_and_shows_matrix_chart_and_examples(corpus):
    page_path = corpus / "report.html"
    status, report, output = diff(corpus, "--html", page_path)
    assert status == 0, output
    html = page_path.read_text()
    page = _Page()
    page.feed(html)
    assert page.urls == []  # no CDN, no external anything
    assert page.tags["script"] == 0 and "@import" not in html and "url(" not in html
    assert set(page.polylines) == {"base", "draft"}
    days = len(report["raised_per_day"])
    assert all(len(p.split()) >= days for p in page.polylines.values())
    assert page.polylines["base"] != page.polylines["draft"]
    text = " ".join(page.text)
    assert f"{report['verdicts']['raised->suppressed']:,}" in text
    assert report["base"] in text and report["draft"] in text
    first = report["examples"]["raised->suppressed"][0]
    assert first["event_id"] in text and first["base"]["reason"] in text
    assert not re.search(r"(?<!\d)\d{10}(?!\d)", html)  # no CPR number anywhere


@pytest.mark.parametrize(("args", "message"), [
    (["--kafka", "127.0.0.1:1"], "give EVENTS.jsonl or --kafka"),
    ([], "give EVENTS.jsonl or --kafka"),
])
def test_history_is_a_file_or_the_journal_never_both(tmp_path, args, message):
    events = [] if not args or args[0] != "--kafka" else [tmp_path / "e.jsonl"]
    status, output = triage("rules", "diff", "--draft", DEFAULT_RULES, *events, "--persons",
                            tmp_path / "p", "--cases", tmp_path / "c", "--report",
                            tmp_path / "r.json", *args)
    assert status == 2 and message in output


def test_an_invalid_draft_is_rejected_with_file_and_line(tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_bytes(draft_text(scores={"stamdata": 7}))
    status, output = triage("rules", "diff", "--draft", draft, tmp_path / "e.jsonl",
                            "--persons", tmp_path / "p", "--cases", tmp_path / "c",
                            "--report", tmp_path / "r.json")
    assert status == 2
    assert re.search(r"draft\.yaml:\d+: stamdata: score must be a number in \[0, 1\]", output)


# --- the journal topic on the embedded broker ---------------------------------------------


async def produce_journal(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    """The worker's journal as it looks: events in order, a clock tick now and then."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i, line in enumerate(lines):
            await producer.send(topic, value=line, key=b"0561", partition=0)
            if i % 500 == 0:  # far in the future: applying it would close every window
                await producer.send(topic, value=b"2099-01-01T00:00:00+00:00", key=b"0561",
                                    partition=0, headers=[(KIND_HEADER, TICK)])
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_the_same_diff_from_the_journal_topic(corpus, kafka_topics, tmp_path):
    lines = [line for line in (corpus / "events.jsonl").read_bytes().splitlines()
             if line.strip()][:6000]
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"\n".join(lines) + b"\n")
    topic = kafka_topics.create(partitions=1, label="routed")
    asyncio.run(produce_journal(kafka_topics.broker.bootstrap, topic, lines))
    status, from_file, output = diff(corpus, events=head)
    assert status == 0, output
    report = tmp_path / "journal.json"
    status, output = triage("rules", "diff", "--draft", corpus / "draft.yaml", "--kafka",
                            kafka_topics.broker.bootstrap, "--topic", topic,
                            "--persons", corpus / "persons.jsonl", "--cases",
                            corpus / "cases.jsonl", "--report", report, "--quiet",
                            "--fail-on-risk")
    from_journal = orjson.loads(report.read_bytes())
    assert from_journal == from_file  # ticks skipped: the same history, the same report
    assert from_journal["events"] > 5000
    assert status == (1 if from_journal["risk"] else 0)


@pytest.mark.kafka
def test_a_journal_with_several_partitions_needs_one_named(kafka_topics, tmp_path):
    topic = kafka_topics.create(partitions=3, label="routed")
    status, output = triage("rules", "diff", "--draft", DEFAULT_RULES, "--kafka",
                            kafka_topics.broker.bootstrap, "--topic", topic, "--persons",
                            tmp_path / "p", "--cases", tmp_path / "c", "--report",
                            tmp_path / "r.json")
    assert status == 2 and "cannot read" in output  # reference files are checked first
    (tmp_path / "p").write_text("")
    (tmp_path / "c").write_text("")
    status, output = triage("rules", "diff", "--draft", DEFAULT_RULES, "--kafka",
                            kafka_topics.broker.bootstrap, "--topic", topic, "--persons",
                            tmp_path / "p", "--cases", tmp_path / "c", "--report",
                            tmp_path / "r.json")
    assert status == 2 and "3 partitions" in output and "--partition" in output
    status, output = triage("rules", "diff", "--draft", DEFAULT_RULES, "--kafka",
                            kafka_topics.broker.bootstrap, "--topic", topic, "--partition",
                            "1", "--persons", tmp_path / "p", "--cases", tmp_path / "c",
                            "--report", tmp_path / "r.json")
    assert status == 0, output  # an empty partition: an empty report
    assert orjson.loads((tmp_path / "r.json").read_bytes())["events"] == 0
