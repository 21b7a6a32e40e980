"""Logging filters named in settings.LOGGING."""

import logging


class OneLine(logging.Filter):
    """A library's retry loop (channels-redis while Redis is down) logs a traceback per
    attempt; keep one line with the exception's type instead of a log flood."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
