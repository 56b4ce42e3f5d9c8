"""A deterministic, arbitrarily large copy of the portal in its shape, for load tests.

Every article is derived from (seed, index) alone, so any page can be rendered on demand in
O(1) without keeping the site in memory: a 20,000-article site costs nothing until served.
Index 0 is the newest article; search page p shows indices (p-1)*per_page … p*per_page-1.
Pages are rendered like the bundled fixtures (replay/render.py): HTML plus
``__NEXT_DATA__``, keyword-id article links (``/article/{keyword}-{newsId}``, some
percent-encoded, some bare ids), bodies in the live ``newsContent`` markup.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from fx168 import site
from replay.render import render_article_page, render_search_page

SOURCES: tuple[tuple[str, str], ...] = (
    ("金融界", "jrj"),
    ("金色财经", "jinse"),
    ("格上财富", "geshang"),
    ("证券之星", "stockstar"),
    ("财联社", "cls"),
    ("证券时报", "stcn"),
    ("每日经济新闻", "nbd"),
)
AUTHORS = ("张晓", "李明", "王蕾", "赵敏", "周宇", "陈杰", "刘洋", "孙悦", "吴迪", "郑涛", "黄婷", "林峰")
SUBJECTS = (
    "央行",
    "证监会",
    "银保监会",
    "发改委",
    "财政部",
    "外汇局",
    "沪深交易所",
    "北交所",
    "港交所",
    "多家券商",
    "公募基金",
    "信托公司",
    "保险资管",
    "城商行",
    "新能源车企",
    "半导体龙头",
    "光伏企业",
)
ACTIONS = (
    "发布",
    "部署",
    "解读",
    "展望",
    "加码",
    "推进",
    "聚焦",
    "调研",
    "布局",
    "发力",
)
OBJECTS = (
    "现代金融体系建设",
    "现代产业体系",
    "现代服务业开放",
    "中国式现代化金融支撑",
    "现代化基础设施投资",
    "农业农村现代化",
    "现代物流体系",
    "治理能力现代化",
    "现代能源体系",
    "数字经济与现代化产业",
)
SENTENCES = (
    "市场人士认为,政策效果将在未来几个季度逐步显现。",
    "分析师指出,流动性保持合理充裕,为实体经济提供了有力支持。",
    "多位业内人士表示,要加快建设现代化产业体系,推动经济实现质的有效提升和量的合理增长。",
    "从结构上看,消费和投资对经济增长的拉动作用有所增强。",
    "业内普遍预计,下半年稳增长政策仍有发力空间。",
    "会议强调,要坚持金融服务实体经济的根本宗旨,建设现代中央银行制度。",
    "数据显示,一季度相关领域融资规模同比增长超过两成。",
    "专家建议,应进一步完善多层次资本市场体系,提升直接融资比重。",
    "报告指出,推进中国式现代化需要金融体系提供更加精准有效的支持。",
    "与此同时,监管部门将持续加强风险监测,守住不发生系统性金融风险的底线。",
    "受此影响,相关板块午后走强,成交额较前一交易日明显放大。",
    "机构认为,现代服务业与先进制造业深度融合,将成为新的增长点。",
    "该负责人表示,将继续扩大高水平对外开放,稳步推进人民币国际化。",
    "投资者需关注海外加息节奏变化对市场情绪的扰动。",
    "市场有风险,投资需谨慎。本内容表述仅供参考,不构成对任何人的投资建议。",
)
TAGS = ("宏观", "货币政策", "资本市场", "现代化", "金融监管", "A股", "港股", "数字经济", "新能源", "乡村振兴")
HOT_TITLES = (
    "美联储议息会议前瞻:市场押注年内再降息两次",
    "人民币汇率企稳回升 离岸人民币收复关键关口",
    "国际金价刷新阶段高点 避险需求持续升温",
    "原油库存意外下降 油价短线拉升逾2%",
    "A股三大指数集体收涨 成交额连续放量",
)
TOPIC_NAMES = ("#美联储动态#", "#黄金走势#", "#A股策略#", "#数字货币#", "#汇市观察#")

#: The bundled seed page (953 of 1000, 2023-02-24) sits at this distance from the newest article.
NEWEST = datetime(2026, 11, 27, 20, 0)
MINUTES_BETWEEN_ARTICLES = 207
#: newsIds in the live range (about 1,050,000 in 2026), falling by ID_STEP per listing position.
FIRST_ID = 1_049_990
ID_STEP = 3
#: Words an article may mention that the live site links to a quote page (/quote/SYMBOL).
QUOTE_WORDS = (("人民币", "USDCNH"), ("A股", "000001"), ("港股", "HSI"))
TOPICS = ((152, "宏观观察"), (158, "央行动态"), (208, "A股策略"), (417, "中国式现代化"), (523, "数字经济"))


@dataclass(frozen=True)
class GeneratedSite:
    """A search result listing of ``pages`` pages for ``keyword`` and every article it links to."""

    keyword: str = "现代"
    pages: int = site.MAX_SEARCH_PAGE
    per_page: int = 10
    seed: int = 168
    hot: tuple[dict[str, Any], ...] = field(default=())
    topics: tuple[dict[str, Any], ...] = field(default=())
    #: A later state of the same site: this many new articles on top (pushing the rest down),
    #: and the newest ``edited`` of the original articles rewritten.
    added: int = 0
    edited: int = 0

    def __post_init__(self) -> None:
        if self.article_count * ID_STEP >= FIRST_ID:  # ids must stay positive
            raise ValueError(f"a generated site has at most {(FIRST_ID - 1) // ID_STEP:,} articles")

    @property
    def article_count(self) -> int:
        return self.pages * self.per_page

    def article_id(self, index: int) -> int:
        """Listing position ``index`` (0 = top) to article id; added articles get ids above the original ones."""
        return FIRST_ID - ID_STEP * (index - self.added)

    def index_of(self, article_id: int) -> int | None:
        offset = FIRST_ID - article_id
        if offset % ID_STEP:
            return None
        index = offset // ID_STEP + self.added
        return index if 0 <= index < self.article_count else None

    def article(self, index: int) -> dict[str, Any]:
        original = index - self.added  # negative: an article added on top
        article = _article(self.seed, self.keyword, original, self.article_id(index))
        if 0 <= original < self.edited:
            article = {
                **article,
                "title": article["title"] + "(更新)",
                "body": [*article["body"][:-1], article["body"][-1] + "【更新】文章内容已于稍后更新。"],
                "blocks": [*article["blocks"][:-1], article["blocks"][-1] + "【更新】文章内容已于稍后更新。"],
                "snippet": article["snippet"] + "【更新】文章内容已于稍后更新。",
            }
        return article

    def page_indices(self, page: int) -> range:
        start = (page - 1) * self.per_page
        return range(start, min(start + self.per_page, self.article_count))

    def sidebars(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        hot = list(self.hot) or [
            {
                "id": 1_050_400 + 37 * rank,
                "url_keyword": "热点",
                "link": "raw",
                "title": title,
                "image": f"/static/cover/hot{rank}.jpg",
            }
            for rank, title in enumerate(HOT_TITLES)
        ]
        topics = list(self.topics) or [
            {"id": 500 + rank, "name": name, "image": f"/static/topic/{500 + rank}.jpg", "discussions": 10 + 97 * rank}
            for rank, name in enumerate(TOPIC_NAMES)
        ]
        return hot, topics

    def search_page(self, page: int, indices: list[int] | None = None) -> str | None:
        """The listing page ``page`` (None past the last page); ``indices`` overrides which articles it shows."""
        if not 1 <= page <= self.pages:
            return None
        chosen = list(self.page_indices(page)) if indices is None else indices
        hot, topics = self.sidebars()
        return render_search_page(
            keyword=self.keyword,
            page=page,
            last_page=self.pages,
            hits=[search_hit(self.article(i)) for i in chosen],
            hot=hot,
            topics=topics,
        )

    def article_page(self, article_id: int) -> str | None:
        index = self.index_of(article_id)
        return None if index is None else render_article_page(self.article(index))


def link_shape(article_id: int) -> str:
    """How a listing links an article: mostly raw keyword-id, some percent-encoded, some bare ids."""
    return {3: "encoded", 7: "bare"}.get(article_id % 10, "raw")


def search_hit(article: dict[str, Any]) -> dict[str, Any]:
    """What a listing shows of an article."""
    return {
        "id": article["id"],
        "url_keyword": article["keyword"],
        "link": link_shape(article["id"]),
        "title": article["title"],
        "snippet": article["snippet"],
        "source": article["source"],
        "source_logo": f"/static/source/{article['source_slug']}.png",
        "date": article["published"][:10],
        "cover": f"/static/cover/{article['id']}.jpg",
    }


@lru_cache(maxsize=4096)
def _article(seed: int, keyword: str, index: int, article_id: int) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{index}")
    source, slug = rng.choice(SOURCES)
    published = NEWEST - timedelta(minutes=MINUTES_BETWEEN_ARTICLES * index + rng.randrange(0, 60))
    if index < 0:  # added after the original site was captured: newer than NEWEST, never in the future
        published = NEWEST + timedelta(minutes=-index)
    title = f"{rng.choice(SUBJECTS)}{rng.choice(ACTIONS)}{rng.choice(OBJECTS)}"
    body = []
    for _ in range(rng.randint(3, 6)):
        body.append("".join(rng.sample(SENTENCES, rng.randint(2, 4))))
    body[0] = f"{published.month}月{published.day}日,{title}。{body[0]}"
    if keyword not in "".join(body):
        body[-1] += f"业内认为,这将为{keyword}发展注入新动能。"
    text = " ".join(body)
    first = text.find(keyword)
    start = max(0, first - rng.randint(8, 24))
    tags = rng.sample(TAGS, rng.randint(1, 3))
    # the live markup around the text (render.inline_html): quote links on words the body has,
    # and a topic link before the text (a snippet runs to the body's end, and an edit appends there)
    blocks = list(body)
    for word, symbol in QUOTE_WORDS:
        for number, paragraph in enumerate(blocks):
            if word in paragraph:
                blocks[number] = paragraph.replace(word, f"{{{{quote:{symbol}|{word}}}}}", 1)
                break
    if index % 3 == 0:
        topic_id, topic_name = TOPICS[index % len(TOPICS)]
        blocks[0] = f"{{{{topic:{topic_id}|{topic_name}}}}}" + blocks[0]
    return {
        "id": article_id,
        "keyword": tags[0],
        "title": title,
        "source": source,
        "source_slug": slug,
        "author": rng.choice(AUTHORS),
        "published": published.strftime("%Y-%m-%d %H:%M"),
        "summary": title + "。",
        "body": body,
        "blocks": blocks,
        "tags": tags,
        "snippet": text[start:],
    }
