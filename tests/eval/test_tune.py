"""Leave-one-corpus-out fitting on synthetic observations: the numbers it reports can fail."""
from eval.tune import Obs, _overlaps, fit_all, loco_abstention, mrr_table


def _obs(corpus, support, answerable, latin=False, named=False, rank=1, kind=None):
    return Obs(corpus, f"{corpus}-{support}-{answerable}", kind or ("direct" if answerable else "unanswerable"),
               answerable, latin, rank if answerable else None, support, named, "")


def _corpus(name, offset):
    """Answerable supports 0.90..0.99 and unanswerable 0.70..0.84, all shifted by `offset` (a denser corpus)."""
    return ([_obs(name, 0.90 + i / 100 + offset, True) for i in range(10)] +
            [_obs(name, 0.70 + i / 100 + offset, False) for i in range(15)])


def test_a_corpus_shifted_upwards_defeats_a_global_threshold_but_not_self_calibration():
    obs = _corpus("a", 0.0) + _corpus("b", 0.0) + _corpus("c", 0.15)
    # the probes of each corpus sit where its unanswerable questions do
    probes = {"a": (0.80, 0.6), "b": (0.80, 0.6), "c": (0.94, 0.6)}
    rows = {(r["left_out"], r["method"]): r for r in loco_abstention(obs, probes, ["a", "b", "c"])}
    glob, own = rows[("c", "global")], rows[("c", "self")]
    assert glob["unanswerable_flagged"] < 0.5          # fit on a and b, c's negatives score above it
    assert own["unanswerable_flagged"] == 1.0 and own["answerable_flagged"] == 0.0
    assert own["threshold"] > glob["threshold"]


def test_the_named_document_rule_flags_whatever_the_support():
    obs = _corpus("a", 0.0) + _corpus("b", 0.0) + [_obs("b", 0.99, False, named=True)]
    rows = loco_abstention(obs, {"a": (0.8, 0.6), "b": (0.8, 0.6)}, ["a", "b"])
    b = next(r for r in rows if r["left_out"] == "b" and r["method"] == "global")
    assert b["n_unanswerable"] == 16 and b["unanswerable_flagged"] == 1.0


def test_fit_all_keeps_answerable_flagged_within_the_goal():
    obs = _corpus("a", 0.0) + _corpus("b", 0.02)
    fitted = fit_all(obs, {"a": (0.8, 0.6), "b": (0.82, 0.6)})
    assert 0.85 <= fitted["global_zh"] <= 0.91
    for o in obs:
        if o.answerable:
            assert o.support >= fitted["global_zh"] - 0.02


def test_overlaps_and_mrr_table():
    assert _overlaps("dev", "dev/notices") and _overlaps("dev/notices", "dev") and not _overlaps("dev", "seeds")
    t = mrr_table([_obs("a", 1, True, rank=1), _obs("a", 1, True, rank=2, kind="english"),
                   _obs("a", 1, True, rank=None), _obs("a", 0, False)])
    assert t["a"]["n"] == 3 and abs(t["a"]["all"] - 0.5) < 1e-9 and t["a"]["english"] == 0.5


def test_every_adjudicated_cross_corpus_anchor_is_in_the_file_it_names():
    """eval/cross_anchors.jsonl makes a question answerable in another corpus; each span must really be there."""
    import json
    from pathlib import Path

    import pytest

    from eval.metrics import canonical
    from eval.tune import CROSS_ANCHORS, SHARED, question_pool
    from index.corpus import read_source

    root = Path(__file__).resolve().parents[2]
    known = {(q.origin, q.id) for q in question_pool()}
    lines = [json.loads(x) for x in CROSS_ANCHORS.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert lines
    for d in lines:
        assert (d["origin"], d["id"]) in known, d
        # another corpus: seeds/ for a dev question, or the dev corpus (another of its folders, for a dev question)
        corpus = root / "seeds" if (root / "seeds" / d["source"]).is_file() else SHARED / "dev"
        if not corpus.is_dir():
            pytest.skip("the dev corpus is not here")
        text = canonical(read_source(corpus, d["source"]).text)
        assert all(canonical(a) in text for a in d["anchors"]), d


def test_as_shipped_rows_apply_the_margin_fit_on_every_corpus_to_each():
    import pytest

    from eval.tune import shipped_rows

    obs = _corpus("a", 0.0) + _corpus("c", 0.15)
    probes = {"a": (0.80, 0.6), "c": (0.94, 0.6)}
    rows = {r["corpus"]: r for r in shipped_rows(obs, probes, {"margin_zh": 0.155, "margin_en": 0.0})}
    assert set(rows) == {"a", "c"}                     # no English observations: no English rows
    assert rows["a"]["threshold"] == pytest.approx(0.955) and rows["c"]["threshold"] == pytest.approx(1.095)
    # a: answerable 0.90..0.99, six below 0.955; c: answerable 1.05..1.14, five below 1.095
    assert (rows["a"]["unanswerable_flagged"], rows["a"]["answerable_flagged"]) == (1.0, 0.6)
    assert (rows["c"]["unanswerable_flagged"], rows["c"]["answerable_flagged"]) == (1.0, 0.5)


def test_miss_rows_list_exactly_the_questions_the_self_rows_count():
    from eval.tune import Q, _miss_lines, miss_rows

    obs = _corpus("a", 0.0) + _corpus("b", 0.0) + _corpus("c", 0.15)
    obs.append(_obs("c", 0.95, True))                      # answerable, below c's cut: flagged
    obs.append(_obs("c", 1.05, False))                     # unanswerable, far above: a confident wrong answer
    probes = {"a": (0.80, 0.6), "b": (0.80, 0.6), "c": (0.94, 0.6)}
    abst = loco_abstention(obs, probes, ["a", "b", "c"])
    qs = [Q(o.qid, f"question {o.qid}", o.kind, (), "x") for o in obs]
    misses = miss_rows(obs, abst, qs)
    for r in abst:                                          # the rows and the list agree, fold by fold
        if r["method"] != "self":
            continue
        mine = [m for m in misses if m["left_out"] == r["left_out"] and m["script"] == r["script"]]
        assert sum(m["miss"] == "answerable flagged" for m in mine) == round(r["answerable_flagged"] * r["n_answerable"])
        assert sum(m["miss"] == "unanswerable answered" for m in mine) == round(
            (1 - r["unanswerable_flagged"]) * r["n_unanswerable"])
    flagged = [m for m in misses if m["miss"] == "answerable flagged"]
    assert [m["qid"] for m in flagged] == ["c-0.95-True"] and flagged[0]["support"] < flagged[0]["threshold"]
    assert flagged[0]["question"] == "question c-0.95-True"
    md = "\n".join(_miss_lines(misses))
    assert "| c | Chinese | answerable flagged | c-0.95-True | direct | -0.0" in md
    assert "| c | Chinese | unanswerable answered | c-1.05-False |" in md
