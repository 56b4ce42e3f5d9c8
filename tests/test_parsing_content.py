"""newsContent: the body in order, topics and symbols, and what is not the article."""

import json

from fx168.parsing.content import read_content_html, video_ids

BODY = """
<div class="centerarticle">
 <p><a class="_internal_link_" href="https://www.fx168news.com/">FX168财经</a>报社(亚太)讯 周一，
    <a class="_internal_link_" href="https://www.fx168news.com/quote/BINBTC">比特币</a>上涨，<strong>6万美元</strong>
    <a data-key="topic" data-value="86" class="topic-entity">#比特日报#</a></p>
 <div class="braft-img-container" data-src="https://static.fx168api.com/img/1.png"><img src="x" alt=""></div>
 <p>（来源：coindesk）</p>
 <h3 id="6eobk">美伊和谈消息未能提振比特币</h3>
 <section><p>第二段，<a class="_internal_link_" href="/quote/XAUUSD">黄金</a>。</p></section>
 <p><a data-key="topic" data-value="86" class="topic-entity">#比特日报#</a>再次出现。</p>
</div>
<script src="https://static.fx168api.com/js/jquery-1.12.3.min.js"></script>
<div style="border-top: 1px solid #ddd;"><div>1. 欢迎转载，转载时请标明来源为FX168财经。</div>
<div>2. 所有内容仅供参考。</div></div>
"""


def test_body_subheads_topics_and_symbols() -> None:
    content = read_content_html(BODY)
    assert content.body == [
        # the line break after "，" sits between two CJK characters: it is no space (CSS Text 3)
        "FX168财经报社(亚太)讯 周一，比特币上涨，6万美元 #比特日报#",
        "美伊和谈消息未能提振比特币",
        "第二段，黄金。",
        "#比特日报#再次出现。",
    ]
    assert content.topics == [{"id": 86, "name": "比特日报"}]
    assert content.symbols == ["BINBTC", "XAUUSD"]
    assert not any("欢迎转载" in p or "来源：coindesk" in p or "jquery" in p for p in content.body)
    assert content.reprinted_from is None and not content.ai_generated and content.video is None


def test_a_reprint_names_its_outlet_and_its_notices_leave_the_body() -> None:
    content = read_content_html(
        '<div class="centerarticle"><p>敬告读者：本文为转载发布，不代表本网站观点。</p><p>正文。</p>'
        "<p>本文转载自金色财经，原文链接:https://example.com/1</p></div>"
    )
    assert content.body == ["正文。"]
    assert content.reprinted_from == "金色财经"


def test_an_ai_piece_is_flagged_and_its_notice_leaves_the_body() -> None:
    content = read_content_html(
        '<div class="centerarticle"><p>金价走高。</p>'
        "<p>（市场有风险，投资需谨慎。本文为AI基于第三方数据生成，仅供参考。）</p></div>"
    )
    assert content.body == ["金价走高。"] and content.ai_generated


def test_a_video_item_is_its_ids_not_a_body() -> None:
    ids = {"appId": "1500001", "fileId": "5285890799"}
    assert video_ids(json.dumps(ids)) == ids
    content = read_content_html(json.dumps(ids))
    assert content.video == ids and content.body == []
    assert video_ids("<p>{not a video}</p>") is None
