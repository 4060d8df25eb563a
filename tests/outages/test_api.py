"""The outage API: authorization (token in constant time, loopback without one), validation
that names the field, create/update/close/list."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from bot.app import create_app
from bot.config import Settings
from bot.outages.api import admin_allowed
from bot.services import Services

ADMIN = "test-admin-token"
BODY: dict[str, Any] = {
    "outage_id": "t-1",
    "city_id": "chita",
    "street": "ул. Бутина",
    "houses": ["10", "12"],
    "services": ["internet", "tv"],
    "kind": "accident",
    "started_at": "2026-01-01T08:10:00+09:00",
    "expected_end": None,
    "reason": "Повреждение кабеля",
}


@pytest.fixture
async def admin(aiohttp_client: Any, settings: Settings, services: Services) -> TestClient:
    configured = replace(settings, admin_token=ADMIN)
    return await aiohttp_client(create_app(configured, services=services))  # type: ignore[no-any-return]


def bearer(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_token_is_required_when_configured(admin: TestClient) -> None:
    assert (await admin.get("/api/v1/outages")).status == 401
    assert (await admin.get("/api/v1/outages", headers=bearer("wrong"))).status == 401
    assert (await admin.post("/api/v1/outages", json=BODY, headers=bearer("x"))).status == 401
    assert (await admin.delete("/api/v1/outages/t-1", headers=bearer("x"))).status == 401
    odd = {"Authorization": "Bearer тест".encode().decode("latin-1")}
    assert (await admin.get("/api/v1/outages", headers=odd)).status == 401  # not a 500
    assert (await admin.get("/api/v1/outages", headers=bearer())).status == 200


def _request(remote: str) -> Any:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (remote, 4242) if name == "peername" else default
    )
    return make_mocked_request("GET", "/api/v1/outages", transport=transport)


def test_without_a_token_only_loopback_may_call() -> None:
    assert admin_allowed(_request("127.0.0.1"), None)
    assert admin_allowed(_request("::1"), None)
    assert not admin_allowed(_request("192.168.1.20"), None)
    assert not admin_allowed(_request("192.168.1.20"), ADMIN)  # and no header


async def test_post_creates_then_updates_get_lists_delete_closes(client: TestClient) -> None:
    created = await client.post("/api/v1/outages", json=BODY)
    assert created.status == 201
    outage = (await created.json())["outage"]
    assert outage["state"] == "ongoing"
    assert outage["houses"] == ["10", "12"]
    assert outage["services"] == ["internet", "tv"]
    updated = await client.post(
        "/api/v1/outages/t-1", json={**BODY, "expected_end": "2099-01-01T14:00:00+09:00"}
    )
    assert updated.status == 200
    assert (await updated.json())["created"] is False
    listing = await (await client.get("/api/v1/outages?city_id=chita")).json()
    ours = [o for o in listing["outages"] if o["outage_id"] == "t-1"]
    assert ours[0]["expected_end"] == "2099-01-01T14:00:00+09:00"
    assert any(o["outage_id"] == "2026-1130-ch-01" for o in listing["outages"])  # the demo CSV
    closed = await client.delete("/api/v1/outages/t-1")
    assert closed.status == 200
    body = await closed.json()
    assert body["outage"]["state"] == "ended"
    assert body["already_ended"] is False
    again = await (await client.delete("/api/v1/outages/t-1")).json()
    assert again["already_ended"] is True
    listing = await (await client.get("/api/v1/outages")).json()
    assert all(o["outage_id"] != "t-1" for o in listing["outages"])
    one = await (await client.get("/api/v1/outages/t-1")).json()
    assert one["outage"]["ended_at"] is not None
    assert (await client.get("/api/v1/outages/nope")).status == 404
    assert (await client.delete("/api/v1/outages/nope")).status == 404


async def test_a_planned_work_ahead_is_listed_as_upcoming(client: TestClient) -> None:
    listing = await (await client.get("/api/v1/outages?city_id=irkutsk")).json()
    [planned] = listing["outages"]
    assert planned["kind"] == "planned"
    assert planned["state"] == "upcoming"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"city_id": "moscow"}, "city_id: unknown city"),
        ({"kind": "outage"}, "kind:"),
        ({"services": ["internet", "radio"]}, "services: radio"),
        ({"services": []}, "services: is empty"),
        ({"street": "", "houses": ["1"]}, "houses: houses need a street"),
        ({"started_at": "вчера"}, "started_at:"),
        ({"started_at": "2026-01-01T08:00:00"}, "started_at: '2026-01-01T08:00:00' has no UTC"),
        ({"expected_end": "2025-01-01T08:00:00+09:00"}, "expected_end: must be after"),
        ({"reason": " "}, "reason: is empty"),
        ({"outage_id": "a/b"}, "outage_id:"),
        ({"houses": 12}, "houses: must be a string"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"reason": "x" * 501}, "reason: longer than"),
    ],
)
async def test_validation_names_the_field(
    client: TestClient, change: dict[str, Any], problem: str
) -> None:
    resp = await client.post("/api/v1/outages", json={**BODY, **change})
    assert resp.status == 400
    assert problem in (await resp.json())["error"]


async def test_malformed_bodies(client: TestClient) -> None:
    assert (await client.post("/api/v1/outages", data=b"{")).status == 400
    assert (await client.post("/api/v1/outages", json=[1])).status == 400
    assert (await client.post("/api/v1/outages/other", json=BODY)).status == 400  # id differs
    assert (await client.post("/api/v1/outages", data=b" " * 20_000)).status == 413


async def test_the_api_is_in_the_openapi_document(client: TestClient) -> None:
    paths = (await (await client.get("/api/v1/openapi.json")).json())["paths"]
    assert set(paths["/api/v1/outages"]) == {"get", "post"}
    assert set(paths["/api/v1/outages/{outage_id}"]) == {"get", "post", "delete"}
