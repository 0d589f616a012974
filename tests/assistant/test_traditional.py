"""Traditional characters: documents and questions match like simplified ones; the text is shown as written."""
import shutil
from pathlib import Path

from assistant import Assistant

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ["什么是“一岗双责”？", "党建与生产经营深度融合的路径有哪些？", "如何发挥党员先锋模范作用推动生产经营？",
             "北起院哪一年利润总额首次突破一亿元？", "国有企业思想政治工作如何守正创新？", "工会如何成为职工的娘家人？"]


def _where(answer):
    return [(p.citation.source, p.citation.line_start, p.citation.line_end) for p in answer.passages]


def test_a_corpus_in_traditional_characters_answers_like_the_simplified_one(tmp_path, fake_embedder):
    import opencc

    s2t = opencc.OpenCC("s2t")
    simp = tmp_path / "simplified"
    trad = tmp_path / "traditional"
    shutil.copytree(ROOT / "seeds", simp)
    trad.mkdir()
    for f in sorted(simp.iterdir()):
        (trad / f.name).write_text(s2t.convert(f.read_text(encoding="utf-8")), encoding="utf-8")
    a = Assistant.open(simp, index=tmp_path / "i1", embedder=fake_embedder, progress=False)
    b = Assistant.open(trad, index=tmp_path / "i2", embedder=fake_embedder, progress=False)
    # it calibrates like the simplified corpus (not to the digit: the structure parser's block words, 摘要 关键词
    # 参考文献, are simplified-only, so a few chunks fall in other blocks)
    assert abs(b.thresholds().found - a.thresholds().found) < 0.02
    same = marked = 0
    for q in QUESTIONS:
        x, y = a.ask(q), b.ask(q)
        same += _where(x)[:1] == _where(y)[:1]
        assert y.found == x.found
        # shown as written: the traditional corpus' passages are in traditional characters, highlights on them
        assert y.passages and all(p.text == s2t.convert(p.text) for p in y.passages)
        # the same chunk (same text once simplified) is highlighted on the same sentences
        t2s = opencc.OpenCC("t2s")
        for px, py in zip(x.passages, y.passages):
            if t2s.convert(py.text) == px.text:
                assert py.highlights == px.highlights
                marked += 1
        # and a traditional question over the traditional corpus gets the same passages
        assert _where(b.ask(s2t.convert(q))) == _where(y)
    # Not all 6: index/structure finds the block words (关键词, 参考文献, 作者简介) only in simplified characters,
    # so the traditional copy has 131 body chunks against 121 and one question's first passage moves
    # (measured: 5 of 6). Traditional questions over a simplified corpus keep their top-1 on every eval
    # question (eval/results/tune.md).
    assert same >= len(QUESTIONS) - 1
    assert marked >= 3 * len(QUESTIONS)      # measured: 22 of the 30 passages are the same chunk in both
