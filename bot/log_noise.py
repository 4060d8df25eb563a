"""Log lines a stranger must not be able to multiply.

aiohttp logs every request its parser refuses (a broken request line, a header too long) as
"Error handling request" at ERROR with a full traceback: anyone on the internet could fill the
log and bury real alarms. Those are the client's mistakes; they become one INFO line naming the
parser's complaint. Everything else aiohttp logs is left as it is.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

AIOHTTP_SERVER = "aiohttp.server"


class ClientMistakes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.msg} (refused: {type(exc).__name__}, HTTP {exc.code})"
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def install() -> None:
    logger = logging.getLogger(AIOHTTP_SERVER)
    if not any(isinstance(f, ClientMistakes) for f in logger.filters):
        logger.addFilter(ClientMistakes())
