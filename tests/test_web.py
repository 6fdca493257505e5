"""The prosecutor's web page end to end in headless Chromium: key, form, results, no external requests.

Keeps a screenshot at test-artifacts/web.png (gitignored) for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sentencing.config import Settings
from serve.app import create_app
from serve.auth import KeyRole
from serve.server import BackgroundServer
from tests.test_service_recommend import demo_home

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make browser)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    built = demo_home(tmp_path_factory)
    settings = Settings(home=tmp_path_factory.mktemp("web-home"), store=built / "cases.sqlite",
                        model_dir=built / "model", index_dir=built / "index")
    app = create_app(settings)
    key, _ = app.state.service.keys.create(KeyRole.PROSECUTOR, office="鼓楼区人民检察院")
    with BackgroundServer(app) as url:
        yield url, key


def test_page_recommends_and_shows_the_work(site) -> None:
    from playwright.sync_api import sync_playwright

    url, key = site
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        assert page.title().startswith("量刑建议辅助系统")
        page.wait_for_selector("#model-status.ok")

        # Without a key the page asks for one instead of calling the API.
        page.click("#load-example")
        page.click("#submit")
        assert "API 密钥" in page.inner_text("#form-error")

        page.fill("#api-key", key)
        page.click("#key-form button[type=submit]")
        assert page.evaluate("sessionStorage.getItem('liangxing.apiKey')") == key
        page.click("#add-defendant")
        assert page.locator("#defendants .defendant").count() == 3
        page.locator("#defendants .defendant").nth(2).locator(".remove").click()
        assert page.locator("#defendants .defendant").count() == 2
        # State one defendant's circumstances explicitly instead of extracting them.
        second = page.locator("#defendants .defendant").nth(1)
        second.locator(".d-auto").uncheck()
        second.locator("input.d-circ[value=plea_agreement]").check()
        # A company as a third defendant: recognised by its name, fined only (刑法第三十一条).
        page.click("#add-defendant")
        third = page.locator("#defendants .defendant").nth(2)
        third.locator(".d-name").fill("南京某物流有限公司")
        third.locator(".d-charges").fill("盗窃")
        page.click("#submit")
        page.wait_for_selector("article.card >> nth=2")

        cards = page.locator("article.card")
        assert cards.count() == 3
        unit = cards.nth(2).inner_text()
        assert "被告单位 南京某物流有限公司" in unit and "单处罚金" in unit and "被告单位（按名称识别）" in unit
        assert "建议刑期区间" not in unit and cards.nth(2).locator(".rangebar").count() == 0
        assert cards.nth(2).locator("select.dc-kind").input_value() == "fine_only"
        first = cards.nth(0)
        assert "被告人 张三" in first.inner_text()
        assert "建议刑期区间" in first.inner_text()
        assert first.locator(".rangebar svg rect").count() >= 3
        assert first.locator(".rangebar svg rect.statutory").count() == 1  # the tier as its own band
        assert first.locator("table").first.locator("tbody tr").count() >= 3  # guideline steps
        similar_rows = first.locator("table.similar tbody tr")
        assert similar_rows.count() >= 1
        assert first.locator(".chart svg").count() == 1
        assert "认罪认罚（录入）" in cards.nth(1).inner_text()
        assert page.locator("#result-meta code").first.inner_text()

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web.png"), full_page=True)
        browser.close()
    assert not errors, errors
    assert all(r.startswith(url) for r in requests), [r for r in requests if not r.startswith(url)]


@contextmanager
def one_defendant_card(site, facts: str, name: str, charges: str, age: int | None = None,
                       pregnant: str | None = None) -> Iterator[Any]:
    """A fresh page with the key entered, one defendant submitted; yields (page, its card). Fails on a
    page error."""
    from playwright.sync_api import sync_playwright

    url, key = site
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#model-status.ok")
        page.fill("#api-key", key)
        page.click("#key-form button[type=submit]")
        page.fill("#facts", facts)
        d = page.locator("#defendants .defendant").first
        d.locator(".d-name").fill(name)
        d.locator(".d-charges").fill(charges)
        if age is not None:
            d.locator(".d-age").fill(str(age))
        if pregnant is not None:
            d.locator(".d-pregnant").select_option(pregnant)
        page.click("#submit")
        card = page.locator("article.card").first
        card.wait_for()
        yield page, card
        browser.close()
    assert not errors, errors


def test_page_lets_the_prosecutor_state_a_tier_no_fact_decides(site) -> None:
    """寻衅滋事: no fact the guideline reads selects 纠集他人多次… (five to ten years). The card offers the
    charge's tiers; choosing one asks again with ``tiers`` and the card shows that tier."""
    heavy = "纠集他人多次实施，严重破坏社会秩序"
    facts = "经审理查明：2021年至2022年，被告人周某纠集他人多次在公共场所随意殴打他人。"
    with one_defendant_card(site, facts, "周某", "寻衅滋事") as (page, card):
        card.locator("select.tier-select").wait_for()
        assert "法定刑幅度：基本犯" in card.locator(".card-head").inner_text()
        assert "按所选幅度重新计算" in card.inner_text()
        card.locator("select.tier-select").select_option(heavy)
        card.locator(".tier-chooser button").click()
        # (a locator, not wait_for_function: the page's CSP forbids the eval that one needs)
        page.locator("article.card .card-head", has_text="纠集他人多次").first.wait_for()
        card = page.locator("article.card").first
        assert heavy in card.locator(".card-head").inner_text()
        # The axis reaches below the tier when the learned low does; the tier's floor is labelled as such.
        assert "法定刑 5年" in card.locator(".rangebar svg").inner_html()
        assert "检察官认定" in card.inner_text()
        assert card.locator("select.tier-select").input_value() == heavy  # the choice stays shown
        assert heavy in page.inner_text("#defendants .d-tiers")  # and the form says what is stated
        page.click("#defendants .d-tiers-clear")
        assert page.locator("#defendants .d-tiers").is_hidden()


def test_page_shows_a_life_sentence_as_a_form_not_a_range(site) -> None:
    facts = "经审理查明：2019年3月，被告人罗某从境外购入甲基苯丙胺7427.8克，运至昆明市贩卖时被抓获。"
    with one_defendant_card(site, facts, "罗某", "贩卖毒品") as (_, card):
        head = card.locator(".headline").inner_text()
        assert "建议刑罚" in head and ("无期徒刑" in head or "死刑" in head)
        assert "建议刑期区间" not in head and card.locator(".rangebar").count() == 0  # no "— 至 —", no empty bar


def test_page_states_a_pregnancy_at_trial(site) -> None:
    """刑法第49条: stated on the form, the recommendation gives no death and says why."""
    facts = "经审理查明：2019年3月，被告人罗某从境外购入甲基苯丙胺7427.8克，运至昆明市贩卖时被抓获。"
    with one_defendant_card(site, facts, "罗某", "贩卖毒品", pregnant="true") as (_, card):
        assert "刑法第四十九条" in card.locator(".warnings").inner_text()
        assert "死刑" not in card.locator(".headline").inner_text()


def test_page_shows_a_fact_that_selects_a_heavier_tier(site) -> None:
    """入户抢劫 (刑法第263条): read from the facts, shown as a 加重 tag with its sentence, and the tier is
    ten years or more."""
    facts = "经审理查明：被告人甲某持刀闯入被害人家中，入户抢劫现金人民币3000元。"
    with one_defendant_card(site, facts, "甲某", "抢劫", age=30) as (_, card):
        tag = card.locator(".tag.aggravation")
        assert tag.count() == 1 and "加重：入户抢劫（" in tag.inner_text()
        assert "入户抢劫" in (tag.get_attribute("title") or "")
        assert "入户抢劫、多次抢劫" in card.locator(".card-head").inner_text()


def test_page_shows_a_tier_read_from_the_facts(site) -> None:
    """The facts say 数额巨大: the tier is taken as stated, shown as a tag with the sentence it was read from."""
    facts = ("公诉机关指控：被告人甲某多次在超市盗窃财物，其中一次盗得价值人民币5000元的手机。"
             "公诉机关认为，被告人甲某多次秘密窃取公私财物，数额巨大，其行为已构成盗窃罪。")
    with one_defendant_card(site, facts, "甲某", "盗窃", age=30) as (page, card):
        tag = card.locator(".tag.stated-tier")
        assert tag.count() == 1 and "法定刑幅度：盗窃·数额巨大或者有其他严重情节（自动识别）" in tag.inner_text()
        assert "数额巨大，其行为已构成盗窃罪" in (tag.get_attribute("title") or "")
        assert "数额巨大或者有其他严重情节" in card.locator(".card-head").inner_text()
        # The prosecutor may set the tier read aside: the quantities then decide (5000 yuan: 数额较大).
        select = card.locator("select.tier-select")
        select.wait_for()
        assert select.input_value() == "数额巨大或者有其他严重情节"
        select.select_option("")
        card.locator(".tier-chooser button").click()
        page.locator("article.card .card-head", has_text="法定刑幅度：数额较大").first.wait_for()
        card = page.locator("article.card").first
        assert card.locator(".tag.stated-tier").count() == 0


def test_page_says_a_defendant_too_young_to_answer_is_not_punished(site) -> None:
    facts = "经审理查明：被告人甲某在某商场盗窃手机一部，价值人民币5000元。"
    with one_defendant_card(site, facts, "甲某", "盗窃", age=13) as (_, card):
        assert "不负刑事责任" in card.locator(".headline").inner_text()
        assert card.locator(".rangebar").count() == 0 and "刑法第17条" in card.locator(".warnings").inner_text()


def test_page_states_a_tier_of_a_charge_whose_name_holds_a_dunhao(site) -> None:
    """强制猥亵、侮辱: the form splits a charge list at 、, so the page sends this charge whole with its tier."""
    heavy = "聚众、在公共场所当众犯罪或者有其他恶劣情节的"
    facts = "经审理查明：2022年6月，被告人钱某在公交车上对被害人实施猥亵。"
    with one_defendant_card(site, facts, "钱某", "强制猥亵、侮辱") as (page, card):
        card.locator("select.tier-select").select_option(heavy)
        card.locator(".tier-chooser button").click()
        page.locator("article.card .card-head", has_text="当众犯罪").first.wait_for()
        assert not page.locator("#form-error").is_visible()


def test_page_prices_each_charge_with_its_own_amount(site) -> None:
    """数罪: 盗窃 of 5,000 yuan beside 诈骗 of 100,000. The 分罪数额 field gives the theft its own amount
    (``charge_quantities``), the defendant's 犯罪数额 serving the fraud; an entry the page cannot read is
    refused with a message, never guessed."""
    facts = "经审理查明：被告人钱某先后窃取他人财物，又虚构事实骗取他人钱款。"
    with one_defendant_card(site, facts, "钱某", "盗窃、诈骗") as (page, card):
        d = page.locator("#defendants .defendant").first
        d.locator(".d-amount").fill("100000")
        page.click("#submit")
        page.locator("article.card", has_text="犯罪数额超出65000的部分 35000").first.wait_for()  # both 数额巨大
        assert "适用“数额较大”" not in page.locator("article.card").first.inner_text()
        d.locator(".d-charge-amounts").fill("盗窃罪=5000")
        page.click("#submit")
        card = page.locator("article.card", has_text="适用“数额较大”").first
        card.wait_for()
        assert "犯罪数额超出2000的部分 3000" in card.inner_text()
        assert "适用“数额巨大或者有其他严重情节”" in card.inner_text()  # the fraud, with 100,000
        assert card.locator(".tag.charge-amount").all_inner_texts() == ["盗窃数额 5,000元（录入）"]
        d.locator(".d-charge-amounts").fill("盗窃=五千")
        page.click("#submit")
        page.locator("#form-error", has_text="看不懂").wait_for()
        d.locator(".d-charge-amounts").fill("抢劫=5000")
        page.click("#submit")
        page.locator("#form-error", has_text="不是被告人钱某的罪名").wait_for()
        # Left out, each charge's amount is read where the facts tell it with the charge's own act
        d.locator(".d-charge-amounts").fill("")
        d.locator(".d-amount").fill("")
        page.fill("#facts", "经审理查明：被告人钱某窃取他人财物价值人民币5000元，又虚构事实骗取他人钱款人民币10万元。")
        page.click("#submit")
        card = page.locator("article.card", has_text="诈骗数额 100,000元（自动识别）").first
        card.wait_for()
        tag = card.locator(".tag.charge-amount", has_text="盗窃数额 5,000元（自动识别）")
        assert tag.get_attribute("title") == "原文：“5000元”"
        assert "适用“数额较大”" in card.inner_text()
