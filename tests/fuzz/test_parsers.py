"""Every pure parser of outside input, fed real payloads with mutated fields and arbitrary JSON:
it either returns its result or raises its own refusal (which the caller answers politely);
never another exception, and never a change to what it was given."""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.channels import rest, telegram, viber, vk, widget
from bot.models import Inbound
from bot.serialize import files_from_json, inbound_from_json, inbound_to_json
from bot.untrusted import (
    MAX_JSON_DEPTH,
    TEXT_LIMITS,
    UntrustedInput,
    bounded_int,
    clean_inbound,
    clean_text,
    loads,
)
from tests.fuzz.strategies import (
    deep_values,
    hostile_text,
    json_values,
    nested,
    platform_payloads,
    strings,
)


def _unchanged_after(parse: Any, raw: Any, *refusals: type[Exception]) -> Any:
    """``parse(raw)``; the refusal types pass as None. ``raw`` must come back untouched."""
    before = copy.deepcopy(raw)
    try:
        result = parse(raw)
    except refusals:
        result = None
    assert _same(raw, before), "the parser changed its input"
    return result


def _same(a: Any, b: Any) -> bool:
    # NaN != NaN: compare the JSON text (NaN prints the same both times).
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(
        b, sort_keys=True, default=repr
    )


def _well_formed(inbound: Inbound) -> None:
    """What every door must hand on: a key of strings and a message id; after the boundary
    (clean_inbound) the text is storable UTF-8 and within the channel's limit."""
    assert all(isinstance(p, str) and p for p in (inbound.key.channel, inbound.key.chat_id))
    assert isinstance(inbound.message_id, str)
    cleaned = clean_inbound(inbound)
    for text in (cleaned.text, cleaned.payload):
        if text is not None:
            text.encode("utf-8")
    if cleaned.text is not None:
        assert len(cleaned.text) <= TEXT_LIMITS.get(inbound.key.channel, 4096)


# --- messengers ----------------------------------------------------------------------------


@given(platform_payloads("telegram"))
def test_telegram_updates(raw: Any) -> None:
    parsed = _unchanged_after(telegram.parse_update, raw, telegram.Unparsable)
    if parsed is not None and parsed.inbound is not None:
        _well_formed(parsed.inbound)


@given(platform_payloads("vk"))
def test_vk_events(raw: Any) -> None:
    def parse(event: Any) -> vk.Parsed:
        if not isinstance(event, dict):  # the webhook refuses a non-object before parse_event
            raise vk.ParseError("not an object")
        return vk.parse_event(event)

    parsed = _unchanged_after(parse, raw, vk.ParseError)
    if parsed is not None and parsed.inbound is not None:
        _well_formed(parsed.inbound)


@given(platform_payloads("viber"))
def test_viber_message_callbacks(raw: Any) -> None:
    def parse(data: Any) -> Inbound:
        if not isinstance(data, dict):
            raise viber.ViberParseError("not an object")
        return viber.parse_message(data)

    inbound = _unchanged_after(parse, raw, viber.ViberParseError)
    if inbound is not None:
        _well_formed(inbound)


@given(json_values())
@example(nested(400))
def test_vk_button_payloads(raw: Any) -> None:
    for value in (raw, json.dumps(raw)):
        payload, token = vk.decode_payload(value)
        assert payload is None or isinstance(payload, str)
        assert token is None or isinstance(token, str)


# --- our own doors -------------------------------------------------------------------------

_REST_BODY = st.fixed_dictionaries(
    {},
    optional={
        "sender": st.one_of(hostile_text(), json_values(4)),
        "text": st.one_of(strings(), json_values(4)),
        "payload": st.one_of(hostile_text(), json_values(4)),
        "locale": st.one_of(hostile_text(8), json_values(2)),
        "message_id": st.one_of(hostile_text(), json_values(4)),
        "location": st.one_of(
            st.fixed_dictionaries(
                {"lat": st.one_of(st.floats(), json_values(2)), "lon": st.floats()}
            ),
            json_values(4),
        ),
        "identity": st.one_of(json_values(4), deep_values()),
    },
)


@given(st.one_of(_REST_BODY, json_values(), deep_values()))
@example({"sender": "\ud800", "text": "\ud800"})
@example({"sender": "s", "location": {"lat": "nan", "lon": 0}})
@example({"sender": "s", "text": "x", "message_id": nested(400)})
def test_rest_bodies_are_parsed_or_refused_with_a_request_error(body: Any) -> None:
    parsed = _unchanged_after(rest.parse_message, body, rest.RequestError)
    if parsed is not None:
        inbound, _identity = parsed
        assert inbound.key.channel == "rest"
        _well_formed(inbound)


_FRAME = st.fixed_dictionaries(
    {
        "type": st.one_of(
            st.sampled_from(["message", "payload", "location", "hello"]), json_values(2)
        ),
    },
    optional={
        "id": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), hostile_text()),
        "text": st.one_of(strings(), json_values(2)),
        "payload": st.one_of(hostile_text(), json_values(2)),
        "title": st.one_of(hostile_text(), json_values(2)),
        "lat": st.one_of(st.floats(), hostile_text(8), json_values(2)),
        "lon": st.one_of(st.floats(), hostile_text(8), json_values(2)),
    },
)


@given(st.one_of(_FRAME, json_values(), deep_values()))
@example({"type": "message", "id": "a", "text": "\ud800"})
@example({"type": "location", "id": "a", "lat": "1e999", "lon": 0})
def test_widget_frames_are_parsed_or_refused_with_a_frame_error(frame: Any) -> None:
    inbound = _unchanged_after(
        lambda f: widget.parse_frame("s" * 16, f, locale="ru"), frame, widget.FrameError
    )
    if inbound is not None:
        _well_formed(inbound)


# --- the boundary itself -------------------------------------------------------------------


@given(st.one_of(strings(), hostile_text(400)), st.integers(min_value=0, max_value=8000))
@example("\ud800" * 3, 4096)
@example("a\r\nb\rc", 10)
@example("invoice\u202egpj.exe\u2066", 100)
def test_clean_text_is_idempotent_storable_and_capped(value: str, limit: int) -> None:
    cleaned = clean_text(value, limit)
    assert len(cleaned) <= limit
    cleaned.encode("utf-8")  # no lone surrogates
    assert not any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in cleaned), (
        "a control character got through"
    )
    assert not any("\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069" for c in cleaned), (
        "a bidirectional override got through"
    )
    assert clean_text(cleaned, limit) == cleaned


@given(
    st.one_of(
        json_values().map(lambda v: json.dumps(v)),
        deep_values().map(json.dumps),
        hostile_text(200),
        st.binary(max_size=200),
        st.builds(lambda n: "[" * n + "]" * n, st.integers(min_value=0, max_value=200_000)),
    )
)
@example(b"\xff\xfe")
@example('"\\ud800"')
@example("[" * 100_000)
def test_loads_refuses_only_with_untrusted_input(raw: str | bytes) -> None:
    try:
        value = loads(raw)
    except UntrustedInput:
        return
    encoded = json.dumps(value)
    assert encoded.count("[") + encoded.count("{") >= 0
    assert json.loads(json.dumps(value)) is not None or value is None


def test_loads_depth_limit_is_exact() -> None:
    assert loads(json.dumps(nested(MAX_JSON_DEPTH))) == nested(MAX_JSON_DEPTH)
    with pytest.raises(UntrustedInput):
        loads(json.dumps(nested(MAX_JSON_DEPTH + 1)))


@given(
    st.one_of(
        st.none(), hostile_text(30), st.integers(min_value=-(10**30), max_value=10**30).map(str)
    )
)
@example("-99999999999999999999999")
@example("1e5")
@example("٣")
def test_bounded_int_refuses_only_with_untrusted_input(raw: str | None) -> None:
    try:
        value = bounded_int(raw, default=0, lowest=0, highest=2**62, name="after")
    except UntrustedInput:
        return
    assert 0 <= value <= 2**62


# --- stored forms read back ----------------------------------------------------------------


@given(platform_payloads("telegram"))
def test_an_inbound_survives_its_stored_form(raw: Any) -> None:
    try:
        parsed = telegram.parse_update(raw)
    except telegram.Unparsable:
        return
    if parsed.inbound is None:
        return
    inbound = clean_inbound(parsed.inbound)
    stored = json.dumps(inbound_to_json(inbound), ensure_ascii=False)
    again = inbound_from_json(json.loads(stored))
    assert (again.key, again.text, again.payload, again.kind) == (
        inbound.key, inbound.text, inbound.payload, inbound.kind,
    )  # fmt: skip


@given(json_values())
def test_file_lists_from_stored_json_never_raise_on_foreign_rows(data: Any) -> None:
    try:
        files_from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        pytest.fail(f"files_from_json raised {exc!r} on {data!r}")
