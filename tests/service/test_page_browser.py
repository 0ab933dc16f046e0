"""The search-and-ask page (``GET /``) in a real headless Chromium, against live ``rag serve``.

Selenium drives the system's Chromium and chromedriver (Debian ``chromium`` and
``chromium-driver``; ``make setup`` installs them). One browser for the module. Servers: the
sample index with an API key (extractive answers) and a BM25 index answered by a tiny random
causal LM (``generator_server``), both from ``conftest.py``.
"""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.service.conftest import API_KEY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (make setup installs them)")
WAIT_S = 30


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900",
                "--disable-extensions", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the CDP network log
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _open(driver, server, query: dict | None = None) -> None:
    """Load the page (with ``query`` as its deep link), entering the key when the server asks."""
    driver.get(server.url + "/" + (f"?{urlencode(query)}" if query else ""))
    if server.headers and not driver.execute_script("return sessionStorage.getItem('rag-api-key')"):
        _wait(driver, lambda d: d.find_element("id", "key-dialog").get_attribute("open") is not None)
        driver.find_element("id", "key-input").send_keys(API_KEY + "\n")
    _wait(driver, lambda d: d.find_element("id", "index").get_attribute("value"))


def _hits(driver) -> list[dict]:
    return [{"rank": h.find_element("css selector", ".rank").text, "meta": h.find_element("css selector", ".meta").text,
             "score": h.find_element("css selector", ".score").text,
             "marks": [m.text for m in h.find_elements("css selector", ".passage mark")]}
            for h in _css(driver, ".hit")]


def _api(server, path: str, body: dict) -> dict:
    r = httpx.post(server.url + path, json=body, headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_key_prompt_appears_when_the_server_requires_a_key(browser, server):
    # Given a tab with no key stored, on a server that requires one
    browser.get(server.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    # When the page asks for the key, a wrong one is entered, then the right one
    _wait(browser, lambda d: d.find_element("id", "key-dialog").get_attribute("open") is not None)
    assert browser.find_element("id", "index").get_attribute("value") == ""  # nothing loaded without it
    browser.find_element("id", "key-input").send_keys("wrong-key\n")
    _wait(browser, lambda d: "did not accept" in d.find_element("id", "key-hint").text)
    assert browser.find_element("id", "key-dialog").get_attribute("open") is not None
    browser.find_element("id", "key-input").send_keys(API_KEY + "\n")
    # Then the indexes load, and the key is kept in this tab's session storage
    _wait(browser, lambda d: d.find_element("id", "index").get_attribute("value") == "sample")
    assert browser.execute_script("return sessionStorage.getItem('rag-api-key')") == API_KEY


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_a_deep_link_searches_on_load_in_each_mode(browser, server, mode):
    # Given a deep link to a search
    query = "rotating storage for search engines"
    expected = _api(server, "/search", {"query": query, "k": 4, "mode": mode})["hits"]
    _open(browser, server, {"q": query, "mode": mode, "k": 4, "index": "sample"})
    # When the page has loaded (no click, no key press)
    _wait(browser, lambda d: len(_css(d, ".hit")) == len(expected))
    # Then the form shows the link's values and the hits are the API's, in order, with their scores
    assert browser.find_element("id", "q").get_attribute("value") == query
    assert browser.find_element("id", "mode").get_attribute("value") == mode
    shown = _hits(browser)
    assert [h["rank"] for h in shown] == [str(r) for r in range(1, len(expected) + 1)] and len(expected) >= 3
    assert [h["meta"] for h in shown] == [e["doc_id"] for e in expected]
    assert [h["score"] for h in shown] == [f"{e['score']:.4f}" for e in expected]


def test_enter_searches_and_the_url_becomes_a_deep_link(browser, server):
    # Given the page
    _open(browser, server)
    box = browser.find_element("id", "q")
    box.clear()
    # When a query is typed and Enter pressed
    box.send_keys("why is the sky blue\n")
    _wait(browser, lambda d: _css(d, ".hit"))
    # Then the address is a link that reproduces the search
    params = dict(p.split("=") for p in urlsplit(browser.current_url).query.split("&"))
    assert params == {"q": "why+is+the+sky+blue", "mode": "hybrid", "k": "10", "index": "sample"}
    assert _hits(browser)[0]["meta"] == "sky1"


def test_query_terms_are_highlighted_as_the_analyzer_matched_them(browser, server):
    # Given a query whose words appear in the passage only in other forms:
    # vaccinated/Vaccines -> vaccin, immunity/immune -> immun (Snowball English)
    _open(browser, server, {"q": "vaccinated immunity", "mode": "bm25", "k": 3, "index": "sample"})
    _wait(browser, lambda d: _css(d, ".hit"))
    # Then passage vax1 marks exactly its words with those stems, in its text and its title
    shown = {h["meta"]: h for h in _hits(browser)}
    assert shown["vax1"]["marks"] == ["Vaccines", "immune"]
    rank = shown["vax1"]["rank"]
    assert [m.text for m in _css(browser, f"#hit-{rank} .hit-title mark")] == ["vaccines"]
    # and vax2 ("Herd immunity": "... people who cannot be vaccinated ...") marks its own forms
    assert shown["vax2"]["marks"] == ["immune", "vaccinated"]


def test_an_extractive_answer_streams_in_with_citations_and_timings(browser, server):
    # Given a search page on the sample index (no generator: extractive answers)
    _open(browser, server, {"q": "why is the sky blue", "mode": "hybrid", "k": 3, "index": "sample"})
    _wait(browser, lambda d: _css(d, ".hit"))
    # When Ask is pressed
    browser.find_element("id", "ask-btn").click()
    _wait(browser, lambda d: d.find_element("id", "answer-kind").text)
    # Then the answer is labelled, each [n] links to its listed passage, and the timings are shown
    expected = _api(server, "/answer", {"question": "why is the sky blue", "k": 3, "mode": "hybrid"})
    assert browser.find_element("id", "answer-kind").text == "extractive"
    assert browser.find_element("id", "answer-text").text == expected["answer"]
    links = _css(browser, "#answer-text a")
    assert links and {a.get_attribute("hash") for a in links} <= {f"#cite-{c['n']}" for c in expected["citations"]}
    assert [li.get_attribute("id") for li in _css(browser, "#citations li")] == [f"cite-{c['n']}" for c in expected["citations"]]
    assert browser.find_element("id", "timings").text.startswith("retrieval ")


def test_a_generated_answer_appears_token_by_token(browser, generator_server):
    # Given the page of a server with a tiny random causal LM (greedy decoding, 24 new tokens at most)
    _open(browser, generator_server, {"q": "why is the sky blue", "mode": "bm25", "k": 2})
    _wait(browser, lambda d: _css(d, ".hit"))
    browser.execute_script("""
        window.__texts = [];
        new MutationObserver(() => window.__texts.push(document.getElementById('answer-text').textContent))
            .observe(document.getElementById('answer-text'), {childList: true, subtree: true, characterData: true});""")
    # When Ask is pressed
    browser.find_element("id", "ask-btn").click()
    _wait(browser, lambda d: d.find_element("id", "answer-kind").text)
    # Then the text grew in several steps to the answer the API gives, labelled as generated
    expected = _api(generator_server, "/answer", {"question": "why is the sky blue", "k": 2, "mode": "bm25"})
    texts = [t for t in dict.fromkeys(browser.execute_script("return window.__texts")) if t]
    assert len(texts) > 2
    assert all(len(a) <= len(b) for a, b in zip(texts, texts[1:]))  # it only grows
    assert browser.find_element("id", "answer-kind").text == "generated"
    assert browser.find_element("id", "answer-text").get_attribute("textContent") == expected["answer"]


def test_a_bad_request_shows_the_servers_message(browser, server):
    # Given a deep link asking for more results than the server allows (k ≤ 100)
    _open(browser, server, {"q": "sky", "mode": "bm25", "k": 500, "index": "sample"})
    # When it loads
    error = _wait(browser, lambda d: d.find_element("id", "error") if d.find_element("id", "error").is_displayed() else None)
    # Then the JSON error's message, code and status are shown, and no results
    assert error.text == "k: Input should be less than or equal to 100 (validation_error, HTTP 422)"
    assert not _css(browser, ".hit")


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_page_and_the_api_docs_request_nothing_from_another_host(browser, server):
    # Given a clean network log
    _requested_urls(browser)
    # When the page searches and answers, and the API docs (Swagger UI) are opened
    _open(browser, server, {"q": "why is the sky blue", "mode": "hybrid", "k": 3, "index": "sample"})
    _wait(browser, lambda d: _css(d, ".hit"))
    browser.find_element("id", "ask-btn").click()
    _wait(browser, lambda d: d.find_element("id", "answer-kind").text)
    browser.get(server.url + "/docs")
    title = _wait(browser, lambda d: (_css(d, ".swagger-ui .info .title") or [None])[0])
    # Then Swagger UI rendered offline, and every request went to the server itself
    assert title.text.startswith("rag-toolkit")
    urls = _requested_urls(browser)
    hosts = {urlsplit(u).netloc for u in urls if not u.startswith("data:")}
    assert hosts == {urlsplit(server.url).netloc}, urls
    assert any(u.endswith("/static-docs/swagger-ui-bundle.js") for u in urls)


def test_a_long_passage_shows_a_snippet_around_the_first_match_and_expands(browser, server):
    # Given the page, and a 1,000-character passage whose only match ("needle", chars 600-606) is
    # past the snippet's length (the fixture passages are all short, so the hit is rendered directly)
    _open(browser, server)
    text = "a" * 599 + " needle " + "b" * 393
    hit = {"id": "long#2", "doc_id": "long", "score": 1.5, "title": "Long", "text": text,
           "metadata": {}, "highlights": {"title": [], "text": [[600, 606]]}}
    browser.execute_script("document.getElementById('results').replaceChildren(renderHit(arguments[0], 1))", hit)
    passage, toggle = _css(browser, "#hit-1 .passage")[0], _css(browser, "#hit-1 .toggle")[0]
    # Then a 320-character window starting 60 before the match, with the match marked
    assert passage.get_attribute("textContent") == "… " + text[540:860] + " …"
    assert [m.text for m in _css(browser, "#hit-1 .passage mark")] == ["needle"]
    assert _css(browser, "#hit-1 .meta")[0].text == "long · passage long#2"
    # When "Show full text" is pressed, the whole passage shows (still marked); pressed again, the snippet
    toggle.click()
    assert passage.get_attribute("textContent") == text and toggle.get_attribute("aria-expanded") == "true"
    assert [m.text for m in _css(browser, "#hit-1 .passage mark")] == ["needle"]
    toggle.click()
    assert passage.get_attribute("textContent") == "… " + text[540:860] + " …"
