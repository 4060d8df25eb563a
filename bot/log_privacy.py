"""Personal data and secrets masked in every log record of the process.

Customers' phone numbers, e-mails, contract numbers, one-time codes and names, and our own
platform tokens (a Telegram bot token is part of every Bot API URL, a VK token rides in the
query string, Viber's in a header) reach log lines through exception messages, reprs in
tracebacks, third-party libraries' request logs and our own formatting. Rather than trust every
call site, ``PersonalDataFilter`` sits on the root logger's handlers: it formats the message with
its arguments, masks the result (and the traceback's text), and hands the record on.

Masks keep log lines useful: ``+7******4567``, ``i***@example.org``, ``****5678``, ``code ******``.

Every expression here runs on untrusted text of any length, so each is linear in it: bounded
repetitions, no nested quantifiers, and a look-behind at the start of each candidate (an e-mail's
local part, a digit run) so a long run is tried from its first character only, not from each one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

# --- secrets -----------------------------------------------------------------------------------
# A Telegram Bot API URL: https://api.telegram.org/bot<token>/method and /file/bot<token>/path.
# Not after another "/": "https://bot.example.ru/…" is a host, not a token.
_TELEGRAM_URL = re.compile(r"(?<!/)(/bot)[^/\s?#'\"]{3,200}(?=/)")
# A bare bot token (123456789:AA…): digits, a colon, then letters among URL-safe characters.
_TELEGRAM_TOKEN = re.compile(r"(?<![\w:])\d{5,12}:(?=[\w-]{0,60}[A-Za-z])[\w-]{6,100}")
# Secrets in a query string or a form body (VK's access_token=, a widget's hash=, code=).
_QUERY_SECRET = re.compile(
    r"(?i)(?<![\w-])(access_token|token|secret|password|passwd|auth_token|api_key|key|sig|"
    r"signature|hash|code|otp)=([^&\s\"'<>]{1,500})"
)
# Secrets in a header, its repr in a dict, or a `name: value` line.
_HEADER_SECRET = re.compile(
    r"(?i)(x-viber-auth-token|x-telegram-bot-api-secret-token|authorization|x-signature"
    r"|x-hub-signature(?:-256)?|x-api-key)(['\"]?\s{0,3}[:=]\s{0,3}['\"]?)"
    r"(?:(?:bearer|basic|token)\s{1,3})?[^\s'\",}]{1,500}"
)
# A personal value by its field name: JSON ("name": "…"), a repr (holder_name='…'), a dict repr.
_FIELDS = (
    "holder_name|full_name|first_name|last_name|middle_name|username|name|address|password"
    "|secret|token|access_token|auth_token|code|otp|text|caption"
)
_KEYED_VALUE = re.compile(
    rf"(?i)(?<![\w-])([\"']?)({_FIELDS})\1(\s{{0,3}}[:=]\s{{0,3}})"
    r"(?:(\")(?:[^\"\\\n]|\\.){0,2000}\"|(')(?:[^'\\\n]|\\.){0,2000}')"
)

# --- personal data -----------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+-])([\w.%+-]{1,64})(?:@|%40)([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
    r"\.[A-Za-z]{2,24})(?![\w-])"
)
# Russian numbers: +7 / 8 / 7, then 10 digits with the usual separators (+7 (914) 123-45-67).
_PHONE = re.compile(
    # "%2B7…" is the same number in a logged URL's query string (an access log line).
    r"(?<![\w+*])(?:\+7|%2[Bb]7|8|7)[\s(-]{0,2}(\d{3})[\s)-]{0,2}(\d{3})[\s-]{0,2}(\d{2})[\s-]{0,2}"
    r"(\d{2})(?!\d)"
)
# Russian words as escapes (the source stays free of Russian literals, which belong in locales/).
_CODE_WORDS = "\u043a\u043e\u0434\\w{0,10}|\u043f\u0430\u0440\u043e\u043b\u044c"  # код…|пароль
_UPPER, _LOWER = "\u0410-\u042f\u0401", "\u0430-\u044f\u0451"  # А-ЯЁ, а-яё
_PATRONYMIC = (  # -вич, -вна, -ична, -инична
    "\u0432\u0438\u0447|\u0432\u043d\u0430|\u0438\u0447\u043d\u0430|\u0438\u043d\u0438\u0447\u043d\u0430"
)
_OLD_PATRONYMIC = "\u0438\u0447"  # -ич (Ильич, Кузьмич)
# A mobile number without the country prefix: 914 000-00-01, (914) 0000001.
_MOBILE = re.compile(
    r"(?<![\w+*(])\(?9(\d{2})\)?[\s-]{0,2}(\d{3})[\s-]{0,2}(\d{2})[\s-]{0,2}(\d{2})(?!\d)"
)
# A one-time code by its word: «код 123456», "code: 123456". Before the long-number rule, which
# would leave a code's last four digits readable.
_CODE = re.compile(rf"(?i)(?<!\w)({_CODE_WORDS}|code|otp|password|pin)(\W{{1,20}}?)\d{{4,8}}(?!\d)")
# Contract numbers (digit strings, 12 in the demo catalog), chat and account ids: any run of
# 8 digits or more that is not a decimal's tail, an ISO date (20261202T…) or part of a word of
# Latin letters and digits (a hex error id or a hash: no personal datum, and wanted in the log).
_LONG_NUMBER = re.compile(r"(?<![\dA-Za-z.])\d{8,}(?![\dA-Za-z])")
# Full Russian names: surname, first name, patronymic (or first name, patronymic, surname).
_NAME_SFP = re.compile(
    rf"(?<![\w-])([{_UPPER}])[{_LOWER}]{{1,30}}(?:-[{_UPPER}][{_LOWER}]{{1,30}})?\s{{1,3}}"
    rf"([{_UPPER}])[{_LOWER}]{{1,30}}\s{{1,3}}"
    rf"([{_UPPER}])[{_LOWER}]{{1,30}}?(?:{_PATRONYMIC}|{_OLD_PATRONYMIC})(?![\w-])"
)
_NAME_FPS = re.compile(
    rf"(?<![\w-])([{_UPPER}])[{_LOWER}]{{1,30}}\s{{1,3}}"
    rf"([{_UPPER}])[{_LOWER}]{{1,30}}?(?:{_PATRONYMIC})\s{{1,3}}"
    rf"([{_UPPER}])[{_LOWER}]{{1,30}}(?:-[{_UPPER}][{_LOWER}]{{1,30}})?(?![\w-])"
)


def _email(match: re.Match[str]) -> str:
    return f"{match.group(1)[0]}***@{match.group(2)}"


def _phone(match: re.Match[str]) -> str:
    return f"+7******{match.group(3)}{match.group(4)}"


def _long_number(match: re.Match[str]) -> str:
    return f"****{match.group(0)[-4:]}"


def _keyed(match: re.Match[str]) -> str:
    key_quote, key, between, double, single = match.groups()
    quote = double or single
    return f"{key_quote}{key}{key_quote}{between}{quote}***{quote}"


def _name(match: re.Match[str]) -> str:
    return " ".join(f"{initial}***" for initial in match.groups())


_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_TELEGRAM_URL, r"\1<token>"),
    (_TELEGRAM_TOKEN, "<telegram-token>"),
    (_HEADER_SECRET, r"\1\2***"),
    (_QUERY_SECRET, r"\1=***"),
    (_KEYED_VALUE, _keyed),
    (_EMAIL, _email),
    (_PHONE, _phone),
    (_MOBILE, _phone),
    (_CODE, r"\1\2******"),
    (_LONG_NUMBER, _long_number),
    (_NAME_SFP, _name),
    (_NAME_FPS, _name),
)
# Cheap tests that let most lines skip the expressions that cannot match them.
_HAS_DIGIT = re.compile(r"\d")
_HAS_UPPER_CYRILLIC = re.compile(rf"[{_UPPER}]")


def mask(text: str) -> str:
    """``text`` with personal data and secrets masked; idempotent (a mask is never re-masked)."""
    if not text:
        return text
    digits = _HAS_DIGIT.search(text) is not None
    for pattern, replacement in _RULES:
        if pattern in (_PHONE, _MOBILE, _CODE, _LONG_NUMBER, _TELEGRAM_TOKEN) and not digits:
            continue
        if pattern in (_NAME_SFP, _NAME_FPS) and not _HAS_UPPER_CYRILLIC.search(text):
            continue
        if pattern is _EMAIL and "@" not in text and "%40" not in text:
            continue
        text = pattern.sub(replacement, text)
    return text


_TRACEBACKS = logging.Formatter()


class PersonalDataFilter(logging.Filter):
    """Masks a record in place (message, traceback, stack), once, and lets it through.

    On a handler it sees every record that reaches the handler, from any logger; the record is
    shared, so handlers after it (pytest's capture, a second stream) get the masked text too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "personal_data_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it when it formats
            return True
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        record.personal_data_masked = True
        return True


def install(logger: logging.Logger | None = None) -> PersonalDataFilter:
    """Put the filter on every handler of ``logger`` (the root by default) that lacks one."""
    target = logger or logging.getLogger()
    found = next(
        (f for h in target.handlers for f in h.filters if isinstance(f, PersonalDataFilter)),
        None,
    )
    masking = found or PersonalDataFilter()
    for handler in target.handlers:
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(masking)
    return masking
