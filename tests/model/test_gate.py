"""Acceptance gate: recall target, baselines, champion tolerance — with readable reasons."""

from model.gate import acceptance_gate


def metrics(recall, pr_auc):
    return {"recall": recall, "pr_auc": pr_auc}


BASELINES = {"majority": metrics(1.0, 0.26), "logistic": metrics(0.91, 0.60)}


def test_a_good_model_without_champion_passes():
    decision = acceptance_gate({"lightgbm": metrics(0.92, 0.65), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.02)

    assert decision.passed and decision.reasons == []
    assert [c["check"] for c in decision.checks] == ["recall_target", "beats_majority", "beats_logistic", "champion"]
    assert "no champion" in decision.checks[-1]["message"]


def test_recall_below_target_is_rejected_with_the_numbers():
    decision = acceptance_gate({"lightgbm": metrics(0.88, 0.65), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.02)

    assert not decision.passed
    assert decision.reasons == ["test recall 0.880 is below the target 0.90"]


def test_falling_behind_the_logistic_baseline_beyond_the_tolerance_is_rejected():
    decision = acceptance_gate({"lightgbm": metrics(0.92, 0.57), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.02)

    assert not decision.passed
    assert decision.reasons == ["test PR-AUC 0.570 is worse by more than the tolerance 0.020 than the logistic "
                                "regression baseline (0.600)"]


def test_a_tie_with_the_logistic_baseline_within_the_tolerance_passes_and_says_so():
    decision = acceptance_gate({"lightgbm": metrics(0.92, 0.585), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.02)

    assert decision.passed
    assert "is within the tolerance 0.020 of the logistic regression baseline (0.600)" in decision.checks[2]["message"]


def test_not_beating_the_majority_baseline_is_rejected_whatever_the_tolerance():
    decision = acceptance_gate({"lightgbm": metrics(0.95, 0.25), "majority": metrics(1.0, 0.26),
                                "logistic": metrics(0.91, 0.26)}, recall_target=0.9, champion_tolerance=0.02)

    assert not decision.passed
    assert decision.reasons == ["test PR-AUC 0.250 does not beat the majority baseline (0.260)"]


def test_champion_within_tolerance_passes_beyond_it_fails():
    candidate = {"lightgbm": metrics(0.91, 0.64), **BASELINES}

    close = acceptance_gate(candidate, recall_target=0.9, champion_tolerance=0.02, champion=metrics(0.92, 0.655))
    worse = acceptance_gate(candidate, recall_target=0.8, champion_tolerance=0.02, champion=metrics(0.95, 0.70))

    assert close.passed
    assert not worse.passed
    assert worse.reasons == [
        "PR-AUC 0.640 vs champion 0.700 on the same test rows (worse than the tolerance 0.020)",
    ]
    worse_recall = acceptance_gate({"lightgbm": metrics(0.91, 0.64), **BASELINES}, recall_target=0.95,
                                   champion_tolerance=0.02, champion=metrics(0.94, 0.60))
    assert worse_recall.reasons == [
        "test recall 0.910 is below the target 0.95",
        "recall 0.910 vs champion 0.940 on the same test rows (worse than the tolerance 0.020)",
    ]


def test_champion_recall_above_the_target_is_not_a_bar():
    # a champion that flags everyone has recall 1.0; meeting the target is what counts
    decision = acceptance_gate({"lightgbm": metrics(0.91, 0.64), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.0, champion=metrics(1.0, 0.3))

    assert decision.passed
    assert "counted up to the target" in decision.checks[-1]["message"]


def test_a_champion_that_could_not_score_does_not_block():
    decision = acceptance_gate({"lightgbm": metrics(0.92, 0.65), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.0, champion_note="the champion could not score the test rows")

    assert decision.passed
    assert decision.checks[-1]["message"] == "the champion could not score the test rows"


def test_several_failures_are_all_reported():
    decision = acceptance_gate({"lightgbm": metrics(0.5, 0.2), **BASELINES}, recall_target=0.9,
                               champion_tolerance=0.02)

    assert len(decision.reasons) == 3
    assert decision.as_dict()["passed"] is False


def test_the_champion_is_judged_against_the_candidate_on_the_rows_it_was_scored_on():
    # the candidate's whole-split PR-AUC would pass; on the champion's unseen rows it is worse
    candidate = {"lightgbm": metrics(0.91, 0.70), **BASELINES}

    decision = acceptance_gate(candidate, recall_target=0.9, champion_tolerance=0.02, champion=metrics(0.92, 0.66),
                               champion_candidate=metrics(0.91, 0.60),
                               champion_rows="the 250 test rows it never trained on")

    assert decision.reasons == [
        "PR-AUC 0.600 vs champion 0.660 on the 250 test rows it never trained on (worse than the tolerance 0.020)",
    ]
