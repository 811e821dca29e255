"""``churnguard campaign`` end to end on a real store: Telco with a champion, outcomes from a
later labelled export; and a campaign on event history, outcomes from the events."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from churnguard import main
from model.campaigns.assignment import campaign_key
from storage.campaigns import contacted_members, get_campaign, members
from storage.db import Database
from tests.conftest import REPO
from tests.model.campaigns.outcomes import simulated_outcomes
from tests.model.event_store import trained_event_store
from tests.model.trained_store import adopt_quick_model, ingest_telco, open_store


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> dict:
    code, out, err = run(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A Telco home with a champion, the environment pointing at it."""
    base = tmp_path_factory.mktemp("campaigns")
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            patch.delenv(name, raising=False)
    home = base / "home"
    store = open_store(f"sqlite:///{(home / 'churnguard.db').as_posix()}", home)
    ingest_telco(store)
    adopt_quick_model(store)
    store.db.dispose()
    patch.setenv("CHURNGUARD_HOME", str(home))
    patch.chdir(base)
    yield home
    patch.undo()


@pytest.fixture(scope="module")
def pilot(home):
    """Campaign 1: every flagged client, 30 % held out."""
    return run_json("campaign", "new", "--name", "pilot", "--holdout", "30%")


def database(home: Path) -> Database:
    return Database(f"sqlite:///{(home / 'churnguard.db').as_posix()}")


def test_a_new_campaign_holds_out_the_share_in_every_band_and_states_its_power(pilot):
    assert pilot["campaign_id"] == 1 and pilot["name"] == "pilot" and pilot["holdout_share"] == 0.3
    assert pilot["source"] == "clients" and pilot["horizon_days"] == 30 and pilot["model_version"] == "v1"
    assert pilot["members"] == pilot["flagged_clients"] > 1000
    for band in pilot["bands"].values():
        assert band["holdout"] == round(0.3 * (band["holdout"] + band["treatment"]))
    power = pilot["power"]
    assert power["statement"].startswith(f"With {pilot['treatment_clients']:,} treated and "
                                         f"{pilot['holdout_clients']:,} held out you can detect a ")
    assert 0 < power["detectable_drop"] < power["baseline_churn"] and power["target_power"] == 0.8


def test_the_stored_assignment_is_the_hash_a_fresh_process_computes(home, pilot):
    with database(home) as db:
        stored = [(m.client_id, m.risk_band, m.arm) for m in members(db, 1)]
        seed = get_campaign(db, 1).seed
    script = ("import json, sys; from model.campaigns.assignment import assign, campaign_key; "
              "rows = json.load(sys.stdin); "
              f"print(json.dumps(assign([r[0] for r in rows], [r[1] for r in rows], key=campaign_key(1, {seed}), "
              "share=0.3)[0]))")
    fresh = subprocess.run([sys.executable, "-c", script], input=json.dumps(stored), capture_output=True, text=True,
                           env={"PYTHONPATH": str(REPO), "PYTHONHASHSEED": "7", "PATH": "/usr/bin:/bin"},
                           cwd=REPO, check=True)

    assert json.loads(fresh.stdout) == [arm for _, _, arm in stored]
    assert campaign_key(1, seed) != campaign_key(2, seed)


def test_the_contact_list_holds_the_treatment_only_riskiest_first(home, pilot, tmp_path):
    code, out, err = run("campaign", "contacts", "1", "--output", str(tmp_path / "list.csv"))

    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "list.csv").read_text(encoding="utf-8-sig"))))
    with database(home) as db:
        arms = {m.client_id: m.arm for m in members(db, 1)}
    assert len(rows) == pilot["treatment_clients"] and f"{len(rows):,} treated clients" in out
    assert {arms[row["client_id"]] for row in rows} == {"treatment"}
    assert not {row["client_id"] for row in rows} & {c for c, arm in arms.items() if arm == "holdout"}
    probabilities = [float(row["churn_probability"]) for row in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    assert [row["rank"] for row in rows[:3]] == ["1", "2", "3"] and rows[0]["reason_1"].endswith(" risk")


@pytest.mark.parametrize(("argv", "code", "message"), [
    (("campaign", "contacts", "1", "--output", "list.xlsx"), 2, "CSV only"),
    (("campaign", "contacts", "1", "--output", "missing/list.csv"), 2, "does not exist"),
    (("campaign", "contacts", "77", "--output", "list.csv"), 1, "there is no campaign 77"),
    (("campaign", "report", "x1"), 2, "named by its number"),
    (("campaign", "new", "--holdout", "0"), 2, "between 1% and 90%"),
    (("campaign", "new", "--holdout", "30"), 2, "write 0.2 or 20%"),
    (("campaign", "new", "--segment", "tenure < 12; drop table campaign"), 2, "cannot be read"),
    (("campaign", "new", "--segment", "Contract == 'month-to-month'"), 2, "Did you mean 'Month-to-month'?"),
    (("campaign", "new", "--top", "0"), 2, "--top must be a whole number"),
])
def test_bad_arguments_get_one_clear_line_and_store_nothing(home, pilot, argv, code, message):
    with database(home) as db:
        before = db.row_counts()

    got, _out, err = run(*argv)

    assert got == code and message in err and "Traceback" not in err
    with database(home) as db:
        after = db.row_counts()
    assert {t: n for t, n in after.items() if t != "audit_log"} == {t: n for t, n in before.items() if t != "audit_log"}
    assert not Path("list.xlsx").exists() and not Path("list.csv").exists()


def test_a_segment_and_a_cap_pick_the_riskiest_matching_clients(home, pilot):
    created = run_json("campaign", "new", "--segment", "Contract == 'Month-to-month' and tenure < 12", "--top", "100")

    assert created["members"] == 100 and created["in_segment"] < created["flagged_clients"]
    with database(home) as db:
        from storage.clients import latest_records

        with db.read_session() as session:
            data = {r.client_id: r.data for r in latest_records(session, [m.client_id for m in members(db, 2)])}
    assert all(d["Contract"] == "Month-to-month" and d["tenure"] < 12 for d in data.values())


def test_the_contact_log_refuses_unknown_clients_outsiders_and_the_holdout_naming_the_rows(home, pilot, tmp_path):
    with database(home) as db:
        everyone = members(db, 1)
        before = db.row_counts()["campaign_contact"]
    treated = [m.client_id for m in everyone if m.arm == "treatment"]
    held = [m.client_id for m in everyone if m.arm == "holdout"]
    member_ids = {m.client_id for m in everyone}
    telco = (REPO / "storage" / "sample_data" / "WA_Fn-UseC_-Telco-Customer-Churn.csv").read_text().splitlines()
    outsider = next(line.split(",")[0] for line in telco[1:] if line.split(",")[0] not in member_ids)
    log = tmp_path / "log.csv"
    log.write_text("client_id,contacted_at,outcome\n"
                   f"{treated[0]},2099-01-01 10:00,accepted\n"
                   f"GHOST-0001,2020-01-01,declined\n"
                   f"{outsider},2020-01-01,\n"
                   f"{held[0]},2020-01-01,\n"
                   f"{treated[1]},last tuesday,\n")

    code, _out, err = run("campaign", "log", "1", str(log))

    assert code == 2
    assert "unknown to ChurnGuard (no record has the id) in data row(s) 2 ('GHOST-0001')" in err
    assert f"not in campaign 1 in data row(s) 3 ('{outsider}')" in err
    assert "in the holdout of campaign 1" in err and f"data row(s) 4 ('{held[0]}')" in err
    assert "in data row(s) 5 ('last tuesday')" in err and "in the future in data row(s) 1" in err
    with database(home) as db:
        assert db.row_counts()["campaign_contact"] == before


def test_the_contact_log_stores_each_contact_once(home, pilot, tmp_path):
    with database(home) as db:
        treated = [m.client_id for m in members(db, 1) if m.arm == "treatment"]
    log = tmp_path / "reached.csv"
    today = datetime.now(UTC).date().isoformat()
    log.write_text("Client ID;Contacted at;Result\n" + "".join(f"{c};{today}T00:0{i % 5};offer\n" for i, c in
                   enumerate(treated[:300])) + f"{treated[400]};;\n", encoding="cp1251")

    first = run_json("campaign", "log", "1", str(log))
    again = run_json("campaign", "log", "1", str(log))

    assert (first["stored"], first["not_contacted"], first["contacted_clients"]) == (300, 1, 300)
    assert (again["stored"], again["already_logged"]) == (0, 300)


def test_the_report_shows_pending_outcomes_then_the_uplift_from_a_later_labelled_export(home, pilot, tmp_path):
    waiting = run_json("campaign", "report", "1")
    assert waiting["pending"] == pilot["members"] and waiting["uplift"]["estimate"] is None
    code, out, _ = run("campaign", "report", "1")
    assert code == 0 and f"{pilot['members']:,} still pending" in out

    with database(home) as db:
        data, truth = simulated_outcomes(db, 1, saved=0.3, seed=11)
    (tmp_path / "outcomes.csv").write_bytes(data)
    assert run("ingest", str(tmp_path / "outcomes.csv"))[0] == 0
    report = run_json("campaign", "report", "1", "--chart", str(tmp_path / "chart.png"))

    for key in ("campaign_id", "treatment", "holdout", "uplift", "saved", "roi", "significant", "pending", "bands"):
        assert key in report
    for arm in ("treatment", "holdout"):
        assert set(report[arm]) >= {"clients", "churned", "rate"}
    assert report["campaign_id"] == 1 and report["pending"] == 0
    assert report["treatment"]["clients"] == pilot["treatment_clients"]
    assert report["uplift"]["low"] <= truth <= report["uplift"]["high"]
    assert report["significant"] is True and report["saved"]["estimate"] > 0
    assert set(report["roi"]) == {"estimate", "low", "high"}
    with database(home) as db:
        reached = len(contacted_members(db, 1))
    assert report["contacts"]["contacted"] == (reached or pilot["treatment_clients"])
    assert report["contacts"]["source"] == ("contact log" if reached else
                                            "assumed: no contact logged, every treated client counted as contacted")
    assert set(report["bands"]) <= {"high", "medium"} and report["bands"]
    offer = report["offer_success_rate"]
    assert offer["setting"] == 0.25 and offer["measured"]["estimate"] is not None
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert report["timeline"]["days"][0] == 0.0


def test_a_campaign_without_effect_is_not_significant(home, pilot, tmp_path):
    created = run_json("campaign", "new", "--name", "placebo", "--holdout", "0.3", "--top", "1500")
    with database(home) as db:
        data, truth = simulated_outcomes(db, created["campaign_id"], saved=0.0, seed=5)
    (tmp_path / "placebo.csv").write_bytes(data)
    assert run("ingest", str(tmp_path / "placebo.csv"))[0] == 0

    report = run_json("campaign", "report", str(created["campaign_id"]))

    assert report["pending"] == 0 and report["significant"] is False
    assert report["uplift"]["low"] <= truth <= report["uplift"]["high"]
    code, out, _ = run("campaign", "report", str(created["campaign_id"]))
    assert code == 0 and "not significant" in out


def test_the_list_names_every_campaign(home, pilot):
    listing = run_json("campaign", "list")

    assert [c["campaign_id"] for c in listing["campaigns"]][-1] == 1
    assert listing["campaigns"][-1]["name"] == "pilot"


# ------------------------------------------------------------------------- event history
def run_events(store, monkeypatch, *argv: str) -> dict:
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURNGUARD_HOME", str(store.settings.home))
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", store.db.url)
    return run_json(*argv)


def test_a_campaign_on_event_history_reads_its_outcomes_from_the_events(monkeypatch):
    store = trained_event_store("sqlite")

    settled = run_events(store, monkeypatch, "campaign", "new", "--as-of", "2025-09-01", "--holdout", "0.4")
    recent = run_events(store, monkeypatch, "campaign", "new", "--holdout", "0.4")
    report = run_events(store, monkeypatch, "campaign", "report", str(settled["campaign_id"]))
    waiting = run_events(store, monkeypatch, "campaign", "report", str(recent["campaign_id"]))

    assert settled["source"] == "events" and settled["as_of"] == "2025-09-01T00:00:00"
    assert report["pending"] == 0 and report["treatment"]["clients"] == settled["treatment_clients"]
    assert report["treatment"]["churned"] + report["holdout"]["churned"] > 0
    with store.db.read_session():
        from storage.events.labels import labels_as_of

        ids = [m.client_id for m in members(store.db, settled["campaign_id"])]
        truth = labels_as_of(store.db, "2025-09-01", horizon_days=30, client_ids=ids)
    assert report["treatment"]["churned"] + report["holdout"]["churned"] == int(truth.sum())
    assert waiting["pending"] == recent["members"] and waiting["known"] == 0


def test_training_after_a_complete_campaign_uses_the_measured_offer_success_rate(home, pilot, monkeypatch):
    from churnguard import load_settings
    from model.campaigns.evidence import measured_offer_success
    from model.campaigns.service import economics_of

    monkeypatch.setenv("CHURNGUARD_TUNING_SECONDS", "2")
    with database(home) as db:
        measured = measured_offer_success(db, economics_of(load_settings()))
    assert measured is not None, "the pilot's outcomes are in (see the report test)"

    trained = run_json("train", "--seed", "3")

    assumptions = trained["roi"]["assumptions"]
    assert assumptions["offer_success_rate"] == pytest.approx(max(measured["rate"], 0.0))
    assert assumptions["offer_success_source"]["kind"] == "measured"
    assert assumptions["offer_success_source"]["campaign_id"] == measured["campaign_id"]
    assert assumptions["offer_success_source"]["setting"] == 0.25
    card = Path(trained["card"]).read_text(encoding="utf-8")
    assert f"measured in campaign {measured['campaign_id']}" in card
    assert "CHURNGUARD_OFFER_SUCCESS_RATE assumes 25 %" in card
    code, out, _ = run("report", trained["version"])
    assert code == 0 and f"measured in campaign {measured['campaign_id']}" in out
