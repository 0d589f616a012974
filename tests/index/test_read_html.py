"""The web page reader: the article's text without the page around it, its line structure, the metadata it states,
decoding, and a one-line reason for a page it cannot use. Fixtures are built from a seed article; the dev
corpus' nine real pages are checked file by file."""
from __future__ import annotations

import difflib
import html as htmllib
import re

import pytest

from index.chunk import chunk_document
from index.readers import ReadContext, Unreadable, read_document
from index.readers import html as html_reader

HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\s+\S.{0,38}|引言|结语)$")
# Text that must never reach a line: page furniture, markup, scripts.
JUNK = ("上一篇", "下一篇", "打印", "关闭", "返回顶部", "分享到", "&nbsp;", "&amp;", "&ldquo;", "<!--", "-->",
        "<script", "function(", "function (", "var ", "document.write", "window.", "首页 >", "当前位置", "版权所有",
        "点击数", "浏览次数", "发布时间：", "文章来源：", "ICP备")


def _read(data: bytes, name: str = "a.html"):
    return read_document(name, data, ReadContext(suffix=".html"))


def _norm(text: str) -> str:
    return re.sub(r"[\s#*|　]", "", text)


def _coverage(want: list[str], got: list[str]) -> float:
    """Share of `want`'s characters found, in order, in `got`."""
    a = "\n".join(_norm(x) for x in want if _norm(x))
    b = "\n".join(_norm(x) for x in got if _norm(x))
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(m.size for m in sm.get_matching_blocks()) / max(1, len(a))


def _level(line: str) -> int:
    return 2 if not line[0].isdigit() else line.split()[0].count(".") + 2


def _entities(text: str) -> str:
    """Escape the text and spell some characters as entities, as content systems do."""
    return (htmllib.escape(text, quote=False).replace("“", "&ldquo;").replace("”", "&rdquo;")
            .replace("国", "&#x56FD;").replace("，", "&#65292;"))


def seed_page(title: str, lines: list[str], charset: str = "utf-8") -> str:
    body = []
    for ln in lines:
        if HEADING.match(ln) and "。" not in ln:
            body.append(f"<h{_level(ln)}>{_entities(ln)}</h{_level(ln)}>")
        else:
            body.append(f"<p>&nbsp;&nbsp;&nbsp;&nbsp;{_entities(ln)}</p>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="{charset}"><title>{_entities(title)}_某某市人民政府门户网站</title>
<style>.nav {{ color: red }} p::after {{ content: "样式文字" }}</style>
<script>var 脚本文字 = "上一篇：脚本里的标题"; function show() {{ document.write("脚本输出"); }}</script>
</head><body>
<div class="nav"><a href="/">首页</a> | <a href="/news">新闻中心</a> | <a href="/gk">政务公开</a> | <a href="/hd">互动交流</a></div>
<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/ll">理论学习</a> &gt; 正文</div>
<!-- 这是一段注释：不应出现在正文里 -->
<div class="main">
  <h1>{_entities(title)}</h1>
  <div class="info">文章来源：中国纪检监察报&nbsp;&nbsp;作者：杨晓炜&nbsp;&nbsp;发布时间：2019-01-01&nbsp;&nbsp;点击数：<span id="hits">1234</span></div>
  <div class="content">
  {"".join(body)}
  <!-- 正文结束 -->
  </div>
  <div class="tools">【<a href="javascript:window.print()">打印正文</a>】【<a href="javascript:window.close()">关闭窗口</a>】 <a href="#top">返回顶部</a></div>
  <div class="share">分享到：<a href="#">微博</a> <a href="#">微信</a></div>
  <div class="pn"><p>上一篇：<a href="/a/1.html">关于召开某某会议的通知</a></p><p>下一篇：<a href="/a/3.html">某某局开展专题学习</a></p></div>
</div>
<div class="footer">版权所有：某某市人民政府办公室 地址：某某市某某路1号 电话：0000-12345678 某ICP备12345678号</div>
<script>show();</script>
</body></html>"""


@pytest.fixture(scope="module")
def seed_html(seed_article) -> tuple[bytes, str, list[str]]:
    title, lines = seed_article
    return seed_page(title, lines).encode("utf-8"), title, lines


def test_seed_page_body_is_the_article(seed_html):
    data, title, lines = seed_html
    doc = _read(data)
    assert doc.format == "html"
    assert doc.lines[0] == "# " + title
    assert _coverage(lines, list(doc.lines)) >= 0.98
    body = [ln for ln in doc.lines[1:] if ln]
    assert body[0] == lines[0] and body[-1] == lines[-1]    # the first and the last paragraph, whole


def test_seed_page_furniture_is_not_text(seed_html):
    doc = _read(seed_html[0])
    for line in doc.lines:
        for junk in JUNK + ("脚本", "样式文字", "注释", "新闻中心", "政务公开", "微博", "关于召开某某会议的通知"):
            assert junk not in line, (junk, line)
    # Entities decoded: &nbsp; is a space (and indentation is dropped), &#x56FD; is 国, &#65292; is ，.
    assert "\u00a0" not in doc.text and "国有企业" in doc.text and "，" in doc.text


def test_seed_page_metadata_line_becomes_meta(seed_html):
    data, title, _ = seed_html
    meta = _read(data).meta
    assert meta.title == title                                  # the <h1>, not 「…_某某市人民政府门户网站」
    assert meta.authors == ("杨晓炜",)
    assert meta.date == "2019-01-01"
    assert meta.source == "中国纪检监察报"


def test_seed_page_headings_and_paragraphs(seed_html):
    data, _, lines = seed_html
    doc = _read(data)
    got = set(doc.lines)
    headings = [ln for ln in lines if HEADING.match(ln) and "。" not in ln]
    assert len(headings) >= 10
    for h in headings:
        assert "#" * _level(h) + " " + h in got, h
    # One line per <p>, an empty line between them.
    assert all(ln == "" for ln in doc.lines[1::2])
    chunks = chunk_document(doc, "a.html")
    assert chunks and all(c.format == "html" for c in chunks)
    assert any(c.headings and c.headings[-1].startswith("3.2.1") for c in chunks)


def test_gbk_page_with_charset_meta(seed_article):
    title, lines = seed_article
    data = seed_page(title, lines[:7], charset="gbk").encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    doc = _read(data)
    assert doc.meta.title == title
    assert _coverage(lines[:7], list(doc.lines)) >= 0.98


def test_gb2312_http_equiv_and_undeclared_gb18030():
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"><title>通知</title>'
            '</head><body><p>各单位：现将《关于加强党建工作的意见》印发给你们，请认真贯彻执行。</p></body></html>')
    assert "加强党建工作" in _read(page.encode("gb18030")).text
    undeclared = page.replace("; charset=gb2312", "")
    assert "加强党建工作" in _read(undeclared.encode("gb18030")).text


def test_bom_wins_over_a_wrong_declaration():
    page = '<html><head><meta charset="gbk"></head><body><p>统筹推进党建工作和生产经营，实现深度融合。</p></body></html>'
    assert "统筹推进党建工作" in _read(b"\xef\xbb\xbf" + page.encode("utf-8")).text


@pytest.mark.parametrize("page", [
    "<html><head><title>空页面</title><script>var a = '很多很多的文字，都在脚本里。';</script></head>"
    "<body><script>document.write('脚本里的正文，也不算。')</script><!-- 注释里的文字 --></body></html>",
    "<html><body><div><a href='/'>首页</a> | <a href='/x'>新闻</a></div><div>【打印本页】【关闭窗口】</div></body></html>",
])
def test_page_without_text(page):
    with pytest.raises(Unreadable, match=r"^no text found$"):
        _read(page.encode())


def test_binary_named_html():
    with pytest.raises(Unreadable, match=r"^binary file"):
        _read(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))


def test_stray_closing_html_tag_does_not_end_the_page():
    # An included header template with its own </html>: browsers read on, and so must we.
    page = ("<html><body><div>网站头部</div></html><div class='c'><p>第一条 为了规范党的工作机关的设立和运行，"
            "制定本条例。</p><p>第二条 本条例适用于中央和地方党的工作机关。</p></div></body></html>")
    text = _read(page.encode()).text
    assert "第一条 为了规范" in text and "第二条 本条例适用于" in text


def test_layout_table_cell_keeps_its_paragraphs_and_data_rows_are_rows():
    page = ("<html><body><table><tr><td>导航</td><td><p>第一段，讲的是党建工作。</p><p>第二段，讲的是生产经营。</p>"
            "<p>第三段，讲的是两者融合。</p></td></tr></table>"
            "<table><tr><td>项目</td><td>责任单位</td></tr><tr><td>党建</td><td>党委办公室</td></tr></table></body></html>")
    lines = [ln for ln in _read(page.encode()).lines if ln]
    assert lines[:3] == ["第一段，讲的是党建工作。", "第二段，讲的是生产经营。", "第三段，讲的是两者融合。"]


@pytest.mark.parametrize("text, pairs", [
    ("来源：中国纪检监察报 作者：杨晓炜 发布时间：2019-01-01 点击数：", [("来源", "中国纪检监察报"), ("作者", "杨晓炜"),
                                                          ("发布时间", "2019-01-01"), ("点击数", "")]),
    ("【发布日期】2017-04-12", [("发布日期", "2017-04-12")]),
    ("标　　题：国务院关于印发《国务院工作规则》的通知", [("标题", "国务院关于印发《国务院工作规则》的通知")]),
    ("时间：2019年10月31日 23:00 浏览： 33", [("时间", "2019年10月31日 23:00"), ("浏览", "33")]),
    ("当地时间9月16日下午，活动在巴西圣保罗正式启动。", None),        # a sentence, not a metadata line
    ("会议时间：另行通知，请各单位做好准备，按时参加。", None),
    ("（作者：方敏 北京大学经济学院教授）", None),                     # an article's own closing note
])
def test_metadata_line_shapes(text, pairs):
    assert html_reader._meta_pairs(text) == pairs


@pytest.mark.parametrize("page_title, title", [
    ("关于某某的决议__2007年第23号国务院公报_中国政府网", "关于某某的决议"),
    ("山西品牌丝路行（南美站）正式启动 - 山西省人民政府门户网站", "山西品牌丝路行（南美站）正式启动"),
    ("中国共产党工作机关条例（试行） - 中国法院网", "中国共产党工作机关条例（试行）"),
    ("2019-2020年度工作要点", "2019-2020年度工作要点"),                 # a hyphen inside a title stays
    ("主标题——副标题_某某网", "主标题——副标题"),
])
def test_site_name_cut_from_title(page_title, title):
    assert html_reader._strip_site(page_title) == title


# ------------------------------------------------------------------------------------------------ real pages

# file: title, date, source (where the page states them), first and last sentence of the body
DEV_WEB = {
    "chinacourt_gongzuo_jiguan_tiaoli.html": (
        "中国共产党工作机关条例（试行）", "2017-04-12", "中共中央",
        "《中国共产党工作机关条例（试行）》全文如下。", "第三十条 本条例自2017年3月1日起施行。"),
    "chinanews_kuoda_neixu.html": (
        "坚定实施扩大内需战略", "2020年07月04日", "求是网",
        "编者按：突如其来的新冠肺炎疫情，是对国家治理体系和治理能力现代化的一次大考。",
        "中国经济这艘大船一定能够乘风破浪，行稳致远！"),
    "govcn_gongbao_tebie_guozhai_2007.html": (
        "全国人民代表大会常务委员会关于批准财政部发行特别国债购买外汇及调整2007年末国债余额限额的决议", "2007年6月29日",
        "全国人民代表大会常务委员会", "（2007年6月29日第十届全国人民代表大会常务委员会第二十八次会议通过）",
        "批准2007年末国债余额限额调整为53365.53亿元。"),
    "govcn_guowuyuan_gongzuo_guize_fragment.html": (
        "国务院关于印发《国务院工作规则》的通知", "2004年06月26日", "国务院",
        "国发〔2004〕18号", "对越权办事、以权谋私等违规、违纪、违法行为，要严肃查处。"),
    "hnzyy_dangzhibu_jineng_dasai.html": (
        "我院医技药剂党支部举办2019年中药、药学理论知识与专业技能大赛", "2019年10月31日",
        "湖南省中医药研究院附属医院", "为深入推进党建与业务工作紧密结合，弘扬我院中药特色，培养优秀的药学技能型人才",
        "不断提升科室专业质量，提高医院的药学服务水平。"),
    "shanxi_gov_pinpai_silu.html": (
        "山西品牌丝路行（南美站）正式启动", "2019-09-18", "山西日报",
        "跨越千山万水，行程近两万公里，山西品牌丝路行首次登陆巴西，刷新“走出去”的最远纪录。",
        "南美站活动将先后在巴西、乌拉圭、阿根廷举行。（张巨峰）"),
    "sxmu_jijian_jianchafa.html": (
        "中华人民共和国监察法", "2018-05-17", "",
        "《中华人民共和国监察法》是为了推进全面依法治国，实现国家监察全面覆盖，深入开展反腐败工作而制定的法律。",
        "《中华人民共和国行政监察法》同时废止。"),
    "thepaper_xi_zhongyao_wenzhang.html": (
        "新年伊始，习近平的重要文章谈了啥？", "2020-01-03", "新华社",
        "【编前语】2020年1月1日出版的《求是》杂志发表习近平总书记重要文章",
        "要加强对全会精神贯彻落实情况的监督检查。"),
    "zsnews_danggongwei_diaoyan.html": (
        "顺德区大良街道党工委委员潘卓辉一行到众创金融街开展调研工作", "2019-03-06", "东区办事处",
        "2019年2月27日下午，佛山顺德区大良街道党工委委员、街道经济和科技促进局局长潘卓辉",
        "为中山经济发展提供创新驱动力。"),
}
# Bylines: 「作者：」 lines, a closing 「（作者：方敏北京大学经济学院教授）」, a news item's 「（张巨峰）」; editors are not authors.
DEV_AUTHORS = {"chinanews_kuoda_neixu.html": ("方敏",), "hnzyy_dangzhibu_jineng_dasai.html": ("医技药剂党支部",),
               "shanxi_gov_pinpai_silu.html": ("张巨峰",)}
# Page furniture seen on these pages (checked by eye), beyond the generic JUNK list.
DEV_JUNK = ("添加收藏夹", "设为首页", "扫一扫", "索 引 号", "主题分类", "发文字号", "责任编辑", "【编辑", "字号", "理论新闻精选",
            "相关推荐", "评论(", "热新闻", "浏览：", "来源于：", "【发布日期】", "【文件来源】", "个人中心", "无障碍",
            "24小时急救电话", "本站原创", "位置：")


def test_dev_pages_all_listed(dev_corpus):
    assert sorted(p.name for p in (dev_corpus / "web").glob("*.htm*")) == sorted(DEV_WEB)


@pytest.mark.parametrize("name", sorted(DEV_WEB))
def test_dev_page(dev_corpus, name):
    title, date, source, first, last = DEV_WEB[name]
    doc = _read((dev_corpus / "web" / name).read_bytes(), name)
    assert (doc.meta.title, doc.meta.date, doc.meta.source) == (title, date, source)
    assert doc.meta.authors == DEV_AUTHORS.get(name, ())
    assert doc.lines[0] == "# " + title
    body = [ln for ln in doc.lines[1:] if ln]
    # The body's first and last sentences (a photo caption may come first, a 「原题为」 note last).
    assert any(first in ln for ln in body[:2]), body[:2]
    assert any(ln.endswith(last) for ln in body[-3:]), body[-3:]
    assert sum(1 for ln in doc.lines if ln.startswith("# ")) == 1           # the title once, not again as text
    for line in doc.lines:
        for junk in JUNK + DEV_JUNK:
            assert junk not in line, (junk, line)
    chunks = chunk_document(doc, name)
    assert chunks and {_norm(c.title) for c in chunks} == {_norm(title)}
    for c in chunks:
        for junk in JUNK + DEV_JUNK:
            assert junk not in c.text, (junk, c.text[:80])


def test_dev_law_pages_keep_one_line_per_article(dev_corpus):
    # Pages that lay a law out in a table cell: every 条 starts its own line (trafilatura's text joins them).
    for name in ("sxmu_jijian_jianchafa.html", "chinacourt_gongzuo_jiguan_tiaoli.html"):
        doc = _read((dev_corpus / "web" / name).read_bytes(), name)
        starts = [ln for ln in doc.lines if re.match(r"^第[一二三四五六七八九十]+条", ln)]
        assert len(starts) >= 30 and not any(re.search(r".第[一二三四五六七八九十]+条\s", ln) for ln in starts)


def _trafilatura_lines(html: str, fmt: str) -> list[str]:
    import trafilatura
    out = trafilatura.extract(html, output_format=fmt, include_formatting=True, include_tables=True,
                              favor_recall=True, with_metadata=False) or ""
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


def test_dev_pages_own_walk_against_trafilatura(dev_corpus, capsys):
    """Why the text comes from our own DOM walk: on every dev page it keeps the body's first and last sentence and at
    least as many paragraphs as trafilatura's markdown or text output (`pytest -s -k trafilatura` prints the
    table). Paragraphs: lines of 20+ characters with a comma or a full stop, from the body's first sentence to its
    last (so a menu or a footer does not count)."""
    rows, ours_total, theirs_total = [], 0, {"markdown": 0, "txt": 0}
    for name, (_, _, _, first, last) in sorted(DEV_WEB.items()):
        data = (dev_corpus / "web" / name).read_bytes()
        html = html_reader.decode_html(data)
        ours = [ln for ln in _read(data, name).lines if ln]
        row = [name[:28], _paragraphs(ours, first, last), _ends(ours, first, last)]
        for fmt in ("markdown", "txt"):
            theirs = _trafilatura_lines(html, fmt)
            row += [_paragraphs(theirs, first, last), _ends(theirs, first, last)]
            theirs_total[fmt] += row[-2]
            assert row[2] >= row[-1], (name, fmt)          # we find the first/last sentence wherever it does
            assert row[1] >= row[-2], (name, fmt)          # and keep at least as many paragraphs
        ours_total += row[1]
        rows.append(row)
    with capsys.disabled():
        print("\npage | ours: paragraphs, first+last found | trafilatura markdown: same | trafilatura txt: same")
        for r in rows:
            print(" | ".join(map(str, r)))
        print(f"total paragraphs: ours {ours_total}, markdown {theirs_total['markdown']}, txt {theirs_total['txt']}")


def _paragraphs(lines: list[str], first: str, last: str) -> int:
    """Paragraph lines of the body: from the one holding its first sentence to the one holding its last."""
    a = next((i for i, ln in enumerate(lines) if first in ln), None)
    b = next((i for i in range(len(lines) - 1, -1, -1) if last in lines[i]), None)
    if a is None or b is None:
        return 0
    return sum(1 for ln in lines[a:b + 1] if len(_norm(ln)) >= 20 and re.search(r"[，。；]", ln))


def _ends(lines: list[str], first: str, last: str) -> int:
    text = "\n".join(lines)
    return int(first in text) + int(last in text)


def test_notice_keeps_its_meeting_time_and_closing_date():
    # 「时间：…」 and a lone date inside the text are the notice's own lines; the metadata line above it is not.
    page = """<html><head><title>关于召开党建工作会议的通知_某某网</title></head><body><div><a href="/">首页</a></div>
    <div class="c"><h1>关于召开党建工作会议的通知</h1><div>发布时间：2019-02-20 来源：某某局办公室</div>
    <p>各单位：为深入推进党建工作与生产经营深度融合，经研究，决定召开党建工作会议。现将有关事项通知如下：</p>
    <p>时间：2019年3月1日上午9:00</p><p>地点：某某局三楼会议室</p><p>请各单位按时参加。</p>
    <p>某某局办公室</p><p>2019年2月20日</p></div></body></html>"""
    doc = _read(page.encode())
    assert (doc.meta.date, doc.meta.source) == ("2019-02-20", "某某局办公室")
    assert [ln for ln in doc.lines if ln][2:] == ["时间：2019年3月1日上午9:00", "地点：某某局三楼会议室", "请各单位按时参加。",
                                                  "某某局办公室", "2019年2月20日"]
    assert not any("发布时间" in ln for ln in doc.lines)


_PARAS = ["第一段：国有企业党建工作与生产经营深度融合，是新时代国企改革的重要任务。",
          "第二段：要坚持党的领导，加强党的建设，把党建优势转化为发展优势。"]
_SIDE = ("<div class='side'><ul>" + "".join(f"<li><a href='/{i}'>相关新闻标题第{i}条，内容简介在这里</a></li>"
                                           for i in range(10)) + "</ul></div>")


@pytest.mark.parametrize("article", [
    "<div id='art'>" + "".join(f"<div>{p}</div>" for p in _PARAS) + "</div>",                  # a <div> per paragraph
    "<div id='art'><font>" + "<br><br>".join(_PARAS) + "</font></div>",                        # <br>-separated text
    "<article>" + "".join(f"<section><p>{p}</p></section>" for p in _PARAS) + "</article>",    # split over siblings
])
def test_main_block_shapes(article):
    page = f"<html><body>{_SIDE}{article}<div class='foot'>地址：某某路1号 电话：0000-12345678</div></body></html>"
    assert [ln for ln in _read(page.encode()).lines if ln] == _PARAS


def test_site_name_first_in_title():
    assert html_reader._strip_site("中国政府网_关于加强党建工作的通知") == "关于加强党建工作的通知"
    page = ("<html><head><title>某某市人民政府网 - 关于加强党建工作的通知</title></head><body><div><h1>关于加强党建工作的通知"
            "</h1><p>各单位：为推进党建工作与生产经营深度融合，现就有关事项通知如下。</p></div></body></html>")
    assert _read(page.encode()).meta.title == "关于加强党建工作的通知"


@pytest.mark.parametrize("value, names", [
    ("方敏北京大学经济学院教授", ("方敏",)),
    ("王小明中国人民大学马克思主义学院", ("王小明",)),
    ("张三 李四", ("张三", "李四")),
    ("本报记者 张三", ("张三",)),
    ("医技药剂党支部", ("医技药剂党支部",)),
])
def test_author_values(value, names):
    assert html_reader._split_names(value) == names


@pytest.mark.parametrize("line, want", [
    ("（2007年6月29日第十届全国人民代表大会常务委员会第二十八次会议通过）", ("2007年6月29日", "全国人民代表大会常务委员会")),
    ("（2018年3月20日第十三届全国人民代表大会第一次会议通过）", ("2018年3月20日", "全国人民代表大会")),
    ("（2007年6月29日第十届全国人民代表大会常务委员会第二十八次会议通过　根据2012年12月28日第十一届全国人民代表大会"
     "常务委员会第三十次会议《关于修改〈中华人民共和国劳动合同法〉的决定》修正）", ("", "")),    # amended: two dates
    ("2018年3月20日，第十三届全国人大一次会议表决通过了《中华人民共和国监察法》。", ("", "")),
])
def test_adoption_line(line, want):
    assert html_reader.adoption(line) == want


def test_news_reporters_and_outlet_line():
    page = """<html><head><title>某某活动正式启动_某某网</title></head><body><div class="top"><h1>某某活动正式启动</h1>
    <div>新华社</div><div>2020-01-03 18:13</div></div><div class="c">
    <p>当地时间9月16日下午，某某活动在某地正式启动，并成功举办双向经贸投资推介会。</p>
    <p>活动将先后在三个国家举行，推动企业加快走出去。（张巨峰 李四）</p></div></body></html>"""
    meta = _read(page.encode()).meta
    assert (meta.authors, meta.source, meta.title) == (("张巨峰", "李四"), "新华社", "某某活动正式启动")
    closing = page.replace("（张巨峰 李四）", "（新华社）")          # an agency in brackets is not a reporter
    assert _read(closing.encode()).meta.authors == ()
