"""Answers from the real bundled model on seeds/: evidence, English questions, honest "not found"."""
import pytest

from eval.metrics import canonical, is_hit

pytestmark = pytest.mark.slow


def test_highlight_covers_the_answering_sentence(real_assistant):
    # What is checked is the highlight; the passage itself ranks 5th to 6th (6th at the weights chosen leave one
    # corpus out, eval/results/tune.md), so the test looks in the top 10.
    ans = real_assistant.ask("北起院哪一年利润总额首次突破一亿元？", top_k=10)
    hits = [p for p in ans.passages if "2023年利润总额首次突破一亿元大关" in canonical(p.text)]
    assert hits, "the passage with the answer is not in the top 10"
    p = hits[0]
    marked = "".join(canonical(p.text[s:e]) for s, e in p.highlights)
    assert "2023年利润总额首次突破一亿元大关" in marked


ENGLISH = [   # (question, Chinese anchors), from eval/questions.jsonl
    ("What profit milestone did Beiqi Institute reach in 2023?", ["2023年利润总额首次突破一亿元大关"]),
    ("Which social media platforms can SOEs use for ideological and political work with employees?",
     ["利用微博、微信、抖音或者公众号", "创建一个员工知心话的栏目"]),
    ("What did Beiqi Institute do during the COVID-19 pandemic to keep operations going?",
     ["为期三个月的“百日攻坚”专项行动", "坚决打赢疫情防控和生产经营两场硬仗"]),
    ("What online platforms are suggested for grassroots Party building in SOEs?",
     ["党建APP、微信公众号、党员学习交流群", "搭建线上党建平台"]),
    ("What is the 'double cultivation' approach for Party affairs cadres and business backbones?",
     ["把业务骨干培养成党务干部，把党务干部培养成业务骨干", "将业务骨干培养成党员"]),
    ("How should ideological work be handled in mixed-ownership reform?",
     ["特别要关注混合所有制改革中的思想政治工作创新", "探索不同所有制成分员工的思想融合路径"]),
    ("Why do full-time Party affairs workers struggle to take part in major business decisions?",
     ["专职党务工作者普遍缺乏生产经营经验", "“说外行话”的现象"]),
    ("How can Party spirit education be made more engaging than classroom lectures?",
     ["“课堂+实境+云端”三维教育体系", "“学习强国”平台进行党史知识闯关竞赛"]),
]


def test_english_questions_reach_chinese_passages(real_assistant):
    reached = []
    for question, anchors in ENGLISH:
        ans = real_assistant.ask(question, top_k=5)
        chinese = [p for p in ans.passages if sum("\u4e00" <= ch <= "\u9fff" for ch in p.text) > len(p.text) / 3]
        reached.append(any(is_hit(p.text, anchors) for p in chinese))
    # Measured: all 8 reach their Chinese passage in the top 5; over all 27 English eval questions hit@5 is 0.52.
    assert sum(reached) >= 6, reached


@pytest.mark.parametrize("question", [
    "光伏电站逆变器如何选型？",
    "What is the capital of Australia?",
    "How do I configure a Kubernetes ingress controller?",
    "如何申请发明专利？",
])
def test_unanswerable_questions_are_not_found_and_marked_weak(real_assistant, question):
    ans = real_assistant.ask(question, top_k=5)
    assert ans.found is False
    assert "没有找到" in ans.message
    assert ans.passages and all(p.confidence == "low" for p in ans.passages)


@pytest.mark.parametrize("question, anchor", [
    ("什么是“一岗双责”？", "一岗双责"),
    ("如何把党组织前置研究程序融入公司治理？", "前置研究"),
    ("工会如何成为职工的娘家人？", "娘家人"),
])
def test_answerable_questions_are_found_with_the_answer_first(real_assistant, question, anchor):
    ans = real_assistant.ask(question, top_k=5)
    assert ans.found and ans.passages[0].confidence in ("high", "medium")
    assert any(anchor in canonical(p.text) for p in ans.passages[:3])


def test_traditional_question_is_found_like_the_simplified_one(real_assistant):
    """Issue 15: 「什麼是「一崗雙責」？」 retrieved the right passages but was flagged not found, every card low."""
    simp = real_assistant.ask("什么是「一岗双责」？", top_k=5)
    trad = real_assistant.ask("什麼是「一崗雙責」？", top_k=5)
    assert trad.found and trad.passages[0].confidence in ("high", "medium")
    assert [p.chunk_id for p in trad.passages] == [p.chunk_id for p in simp.passages]
    assert trad.question == "什麼是「一崗雙責」？"


def test_a_named_regulation_the_corpus_lacks_is_not_answered_from_another(real_assistant):
    ans = real_assistant.ask("《中央企业合规管理办法》要求设立首席合规官吗？", top_k=5)
    assert ans.found is False and all(p.confidence == "low" for p in ans.passages)


def test_thresholds_are_self_calibrated_on_the_real_model(real_assistant):
    t = real_assistant.thresholds()
    assert t.origin.startswith("self-calibrated")
    # a probe-based threshold lands where e5's supports live, Chinese above English
    assert 0.8 < t.found < 1.0 and 0.6 < t.found_latin < t.found
