import pytest

from index.sentences import split_sentences


@pytest.mark.parametrize("text, want", [
    ("第一句话在这里。第二句话在这里！", ["第一句话在这里。", "第二句话在这里！"]),
    ("他说：“要落实。”然后继续推进工作。", ["他说：“要落实。”", "然后继续推进工作。"]),
    ("一是：加强领导。二是完善机制建设工作。", ["一是：加强领导。", "二是完善机制建设工作。"]),
    ("短。后面是一个较长的句子。", ["短。后面是一个较长的句子。"]),   # a piece under 6 chars joins the next
    ("没有句末标点的一段文字", ["没有句末标点的一段文字"]),
    ("", []),
])
def test_split(text, want):
    assert [text[s:e] for s, e in split_sentences(text)] == want


def test_spans_cover_text_in_order():
    text = "2023年利润总额首次突破一亿元大关。营业收入同比增长。"
    spans = split_sentences(text)
    assert spans == sorted(spans) and all(0 <= s < e <= len(text) for s, e in spans)
