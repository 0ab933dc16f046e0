"""``POST /search`` with ``"highlight": true``: spans of the query's terms, by the index's analyzer."""

from __future__ import annotations


def test_highlights_are_the_words_the_analyzer_matched(server):
    # Given the query "vaccinated immunity" (terms vaccin, immun under Snowball English)
    with server.client() as c:
        # When
        r = c.post("/search", json={"query": "vaccinated immunity", "k": 5, "mode": "bm25", "highlight": True})
    # Then vax1's "Vaccines" (0-8) and "immune" (20-26), and "vaccines" in its title (4-12), are marked
    assert r.status_code == 200
    hits = {h["id"]: h for h in r.json()["hits"]}
    assert hits["vax1"]["highlights"] == {"title": [[4, 12]], "text": [[0, 8], [20, 26]]}
    for h in hits.values():  # every span is a matching word of its field
        for field in ("title", "text"):
            words = [h[field][s:e].lower() for s, e in h["highlights"][field]]
            assert all(w.startswith(("vaccin", "immun")) for w in words), words


def test_without_the_flag_hits_carry_no_highlights(server):
    with server.client() as c:
        hits = c.post("/search", json={"query": "vaccinated immunity", "k": 3, "mode": "bm25"}).json()["hits"]
    assert hits and all("highlights" not in h for h in hits)
