"""Search finds every word in any order, with or without diacritics (đ folded to d)."""

from __future__ import annotations

import unicodedata

import httpx
import pytest

from nscl_domain.text import search_terms

BK = "/v1/programmes/bac-kan-nscl"


async def unit_keys(client: httpx.AsyncClient, q: str) -> list[str]:
    answer = await client.get("/v1/org-units", params={"q": q, "limit": 200})
    assert answer.status_code == 200, answer.text
    return [u["key"] for u in answer.json()["items"]]


class TestUnits:
    @pytest.mark.parametrize(
        "q",
        [
            "chat luong bac kan",
            "bac kan chat luong",
            "Bắc Kạn   Chất lượng",
            unicodedata.normalize("NFD", "chất lượng bắc kạn"),
            "DO LUONG tieu chuan",
            "đo lường kạn",
        ],
    )
    async def test_the_sub_department_is_found_by_its_words_in_any_order(
        self, client: httpx.AsyncClient, q: str
    ) -> None:
        assert "bk-tcdlcl" in await unit_keys(client, q)

    async def test_every_word_must_occur(self, client: httpx.AsyncClient) -> None:
        assert await unit_keys(client, "chat luong lang son") == []
        found = await unit_keys(client, "chat luong thai nguyen")
        assert "tn-tcdlcl" in found
        assert "bk-tcdlcl" not in found

    async def test_like_wildcards_in_the_query_are_plain_characters(
        self, client: httpx.AsyncClient
    ) -> None:
        assert await unit_keys(client, "chat %") == []
        assert await unit_keys(client, "_") == []


class TestTasks:
    async def test_a_task_is_found_by_words_out_of_order(self, client: httpx.AsyncClient) -> None:
        answer = await client.get(
            f"{BK}/tasks", params={"q": "thong minh cong cu nang suat", "limit": 200}
        )
        assert answer.status_code == 200, answer.text
        assert "t-2-1" in [t["key"] for t in answer.json()["items"]]


def test_search_terms_fold_case_diacritics_and_d() -> None:
    assert search_terms(" Chất  LƯỢNG\tĐồn ") == ["chat", "luong", "don"]
    assert search_terms(unicodedata.normalize("NFD", "Đo lường")) == ["do", "luong"]
