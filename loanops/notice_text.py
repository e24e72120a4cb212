"""The text of a notice: the Jinja2 template ``templates/<channel>/<template>.txt`` (zh-CN) filled
with the notice's payload and its application number. Used by the notice relay (SMS) and the API
(inbox notices, read in the app)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from loanops.settings import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


class NoticeTemplateError(Exception):
    """No template for the notice, or its payload lacks a value the template needs."""


@cache
def _environment() -> Environment:
    # Plain text (SMS and inbox lines), so no HTML escaping; a missing value is an error, never
    # an empty string in a message to a borrower.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def template_path(channel: str, template: str) -> Path:
    return TEMPLATES_DIR / channel / f"{template}.txt"


def render_notice(
    channel: str, template: str, payload: dict[str, Any], *, application_no: str | None
) -> str:
    """The notice's text on one line (template line breaks become spaces)."""
    try:
        tpl = _environment().get_template(f"{channel}/{template}.txt")
    except TemplateNotFound:
        raise NoticeTemplateError(f"no template {channel}/{template}.txt") from None
    try:
        text = tpl.render(**{**payload, "application_no": application_no or ""})
    except Exception as exc:  # jinja2.UndefinedError and friends
        raise NoticeTemplateError(f"{channel}/{template}.txt: {exc}") from exc
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
