"""Render a notification for one event kind, channel and language from the Jinja templates.

Layout: `templates/<event kind>/<lang>.j2` holds blocks `subject`, `text` (long form: email,
console) and `short` (SMS, push, WhatsApp preview); `templates/<event kind>/params.j2` lists the
WhatsApp template's body parameters one per line; `templates/<event kind>/<channel>.<lang>.j2`,
when present, overrides the event file for that channel. Email HTML and the text footer come from
`templates/_layout/`. Every block is rendered for every channel so a missing variable fails the
same way whichever channel asked (StrictUndefined).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.runtime import Context

from cloud.notifications import formatting
from cloud.notifications.channels.base import RenderedMessage
from cloud.notifications.kinds import BABEL_LOCALES, ChannelKind, EventKind, Language

TEMPLATE_DIR = Path(__file__).parent / "templates"
_BLOCKS = ("subject", "text", "short")


class TemplateRenderError(ValueError):
    """The template could not be rendered: missing/ill-typed variable or unknown template."""


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(money=_money, when=_when, time=_time, day=_day, number=_number)
    return env


def _defined(value: Any) -> Any:
    """Filters receive an Undefined instead of failing; touching it makes StrictUndefined raise."""
    if isinstance(value, jinja2.Undefined):
        str(value)
    return value


@jinja2.pass_context
def _money(context: Context, amount_minor: int, currency: str) -> str:
    return formatting.money(_defined(amount_minor), _defined(currency), context["_locale"])


@jinja2.pass_context
def _when(context: Context, value: Any) -> str:
    return formatting.local_datetime(_defined(value), context["_zone"], context["_locale"])


@jinja2.pass_context
def _time(context: Context, value: Any) -> str:
    return formatting.local_time(_defined(value), context["_zone"], context["_locale"])


@jinja2.pass_context
def _day(context: Context, value: Any) -> str:
    return formatting.local_date(_defined(value), context["_zone"], context["_locale"])


@jinja2.pass_context
def _number(context: Context, value: Any) -> str:
    return formatting.number(_defined(value), context["_locale"])


def _zone(library_tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(library_tz, ZoneInfo):
        return library_tz
    try:
        return ZoneInfo(library_tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TemplateRenderError(f"unknown time zone {library_tz!r}") from exc


def _event_template(kind: EventKind, channel: ChannelKind, language: Language) -> jinja2.Template:
    env = environment()
    names = [f"{kind.value}/{channel.value}.{language.value}.j2", f"{kind.value}/{language.value}.j2"]
    try:
        return env.select_template(names)
    except jinja2.TemplatesNotFound as exc:
        raise TemplateRenderError(f"no template for {kind.value} in {language.value}") from exc


def _render_blocks(template: jinja2.Template, variables: dict[str, Any]) -> dict[str, str]:
    context = template.new_context(variables)
    return {name: "".join(template.blocks[name](context)).strip() for name in _BLOCKS}


def _render_file(name: str, variables: dict[str, Any]) -> str:
    return environment().get_template(name).render(variables).strip()


def render(
    event_kind: EventKind,
    channel: ChannelKind,
    language: Language,
    context: Mapping[str, Any],
    *,
    library_tz: str | ZoneInfo,
    unsubscribe_url: str | None = None,
) -> RenderedMessage:
    """Render one message. Money values are integer minor units; datetimes must be timezone-aware."""
    variables = {
        **context,
        "_locale": BABEL_LOCALES[language],
        "_zone": _zone(library_tz),
    }
    try:
        blocks = _render_blocks(_event_template(event_kind, channel, language), variables)
        parameters = _render_file(f"{event_kind.value}/params.j2", variables).splitlines()
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"{event_kind.value}/{language.value}: {exc.message}") from exc
    except (formatting.FormattingError, TypeError, ValueError) as exc:
        raise TemplateRenderError(f"{event_kind.value}/{language.value}: {exc}") from exc
    return _for_channel(channel, language, blocks, tuple(parameters), context, unsubscribe_url)


def _for_channel(
    channel: ChannelKind,
    language: Language,
    blocks: dict[str, str],
    parameters: tuple[str, ...],
    context: Mapping[str, Any],
    unsubscribe_url: str | None,
) -> RenderedMessage:
    subject = " ".join(blocks["subject"].split())  # one line: it becomes a mail header / push title
    if channel is ChannelKind.EMAIL:
        layout = {
            "subject": subject,
            "text": blocks["text"],
            "paragraphs": [p.splitlines() for p in blocks["text"].split("\n\n") if p.strip()],
            "action_url": context.get("action_url"),
            "unsubscribe_url": unsubscribe_url,
        }
        text = _render_file(f"_layout/email.{language.value}.txt.j2", layout)
        html = _render_file(f"_layout/email.{language.value}.html.j2", layout)
        return RenderedMessage(subject=subject, text=text, html=html, template_parameters=parameters)
    if channel is ChannelKind.CONSOLE:
        return RenderedMessage(subject=subject, text=blocks["text"], template_parameters=parameters)
    return RenderedMessage(subject=subject, text=blocks["short"], template_parameters=parameters)
