"""Every event kind renders in English and Hindi on every channel; a missing variable is an error."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.templates import TemplateRenderError, render

CASES = [(kind, language) for kind in EventKind for language in Language]


@pytest.mark.parametrize(("kind", "language"), CASES)
def test_renders_on_every_channel(kind: EventKind, language: Language) -> None:
    for channel in ChannelKind:
        rendered = render(kind, channel, language, SAMPLE_CONTEXTS[kind], library_tz="Asia/Kolkata")
        assert rendered.subject and rendered.text and rendered.template_parameters
        assert "{{" not in rendered.text and "{%" not in rendered.subject
        assert (rendered.html is not None) == (channel is ChannelKind.EMAIL)


@pytest.mark.parametrize(("kind", "language"), CASES)
def test_each_missing_variable_is_an_error(kind: EventKind, language: Language) -> None:
    context = SAMPLE_CONTEXTS[kind]
    for name in context:
        partial = {key: value for key, value in context.items() if key != name}
        with pytest.raises(TemplateRenderError, match=name):
            render(kind, ChannelKind.SMS, language, partial, library_tz="Asia/Kolkata")


def test_hindi_text_is_really_hindi_and_english_is_not() -> None:
    for kind in EventKind:
        context = SAMPLE_CONTEXTS[kind]
        hindi = render(kind, ChannelKind.CONSOLE, Language.HINDI, context, library_tz="Asia/Kolkata")
        english = render(kind, ChannelKind.CONSOLE, Language.ENGLISH, context, library_tz="Asia/Kolkata")
        if kind is not EventKind.OWNER_ANNOUNCEMENT:  # the owner writes the announcement's words
            assert any("\u0900" <= ch <= "\u097f" for ch in hindi.text), kind
        assert not any("\u0900" <= ch <= "\u097f" for ch in english.text), kind


def test_money_is_minor_units_with_indian_grouping() -> None:
    context = {**SAMPLE_CONTEXTS[EventKind.PAYMENT_SUCCEEDED], "amount_minor": 12345678}
    hindi = render(EventKind.PAYMENT_SUCCEEDED, ChannelKind.SMS, Language.HINDI, context, library_tz="UTC")
    assert "₹1,23,456.78" in hindi.text
    usd = {**context, "currency": "USD", "amount_minor": 1999}
    english = render(EventKind.PAYMENT_SUCCEEDED, ChannelKind.SMS, Language.ENGLISH, usd, library_tz="UTC")
    assert "US$19.99" in english.text or "$19.99" in english.text


def test_times_are_shown_in_the_library_zone() -> None:
    context = SAMPLE_CONTEXTS[EventKind.BOOKING_REMINDER]  # starts 03:30 UTC
    kolkata = render(
        EventKind.BOOKING_REMINDER, ChannelKind.SMS, Language.ENGLISH, context, library_tz="Asia/Kolkata"
    )
    dubai = render(
        EventKind.BOOKING_REMINDER, ChannelKind.SMS, Language.ENGLISH, context, library_tz="Asia/Dubai"
    )
    assert "9:00 am" in kolkata.text and "7:30 am" in dubai.text


def test_context_read_back_from_json_renders_the_same() -> None:
    kind = EventKind.DUES_OVERDUE
    stored = json.loads(json.dumps(SAMPLE_CONTEXTS[kind], default=lambda v: v.isoformat()))
    from_json = render(kind, ChannelKind.EMAIL, Language.HINDI, stored, library_tz="Asia/Kolkata")
    direct = render(kind, ChannelKind.EMAIL, Language.HINDI, SAMPLE_CONTEXTS[kind], library_tz="Asia/Kolkata")
    assert from_json == direct


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starts_at", dt.datetime(2026, 11, 25, 9, 0), "naive"),
        ("starts_at", "tomorrow", "ISO 8601"),
        ("amount_minor", 120.5, "minor units"),
    ],
)
def test_ill_typed_values_are_clear_errors(field: str, value: object, message: str) -> None:
    context = {**SAMPLE_CONTEXTS[EventKind.BOOKING_CONFIRMED], field: value}
    with pytest.raises(TemplateRenderError, match=message):
        render(EventKind.BOOKING_CONFIRMED, ChannelKind.EMAIL, Language.ENGLISH, context, library_tz="UTC")


def test_unknown_time_zone_is_an_error() -> None:
    with pytest.raises(TemplateRenderError, match="time zone"):
        render(
            EventKind.OTP,
            ChannelKind.SMS,
            Language.ENGLISH,
            SAMPLE_CONTEXTS[EventKind.OTP],
            library_tz="Mars/Base",
        )


def test_html_escapes_owner_text_but_plain_text_keeps_it() -> None:
    context = {**SAMPLE_CONTEXTS[EventKind.OWNER_ANNOUNCEMENT], "title": "<script>alert(1)</script> & more"}
    rendered = render(
        EventKind.OWNER_ANNOUNCEMENT, ChannelKind.EMAIL, Language.ENGLISH, context, library_tz="UTC"
    )
    assert rendered.html is not None
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<script>alert(1)</script> & more" in rendered.text


def test_subject_is_always_one_line() -> None:
    context = {**SAMPLE_CONTEXTS[EventKind.OWNER_ANNOUNCEMENT], "title": "Closed\r\nBcc: all@example.com"}
    rendered = render(
        EventKind.OWNER_ANNOUNCEMENT, ChannelKind.EMAIL, Language.ENGLISH, context, library_tz="UTC"
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_email_html_has_action_button_and_unsubscribe_link() -> None:
    kind = EventKind.INVOICE_READY
    rendered = render(
        kind,
        ChannelKind.EMAIL,
        Language.HINDI,
        SAMPLE_CONTEXTS[kind],
        library_tz="UTC",
        unsubscribe_url="https://u/x?token=t",
    )
    assert rendered.html is not None
    assert 'href="https://app.studyspot.example/invoices/INV-2026-0042.pdf"' in rendered.html
    assert 'href="https://u/x?token=t"' in rendered.html and "ये ईमेल बंद करें" in rendered.html


@settings(max_examples=150, deadline=None)
@given(title=st.text(max_size=80), body=st.text(max_size=300), language=st.sampled_from(list(Language)))
def test_any_owner_text_renders_and_stays_escaped_in_html(title: str, body: str, language: Language) -> None:
    context = {**SAMPLE_CONTEXTS[EventKind.OWNER_ANNOUNCEMENT], "title": title, "body": body}
    for channel in ChannelKind:
        rendered = render(EventKind.OWNER_ANNOUNCEMENT, channel, language, context, library_tz="Asia/Kolkata")
        assert "\n" not in rendered.subject
        if rendered.html is not None:
            assert f'<h1 style="font-size: 20px;">{escape(rendered.subject)}</h1>' in rendered.html
