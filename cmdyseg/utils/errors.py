# Copyright (c) cmdyseg contributors. All rights reserved.
"""The marker of errors that the user, not the code, has to fix.

Every error class that reports bad input (a missing or corrupt file, a
value that cannot work) also derives from :class:`UserInputError`, beside
the built-in class that callers catch it as (``RuntimeError``,
``ValueError``, ``OSError``...). The command-line tools run their ``main``
through :func:`cmdyseg.utils.cli.run_cli`, which prints such an error as
one line, ``<tool>: error: <message>``, and exits with status 1; any other
exception is a bug and keeps its traceback.

The message of a :class:`UserInputError` is therefore written for the
user: it names the file or value at fault and, where it helps, what to
do. It is shown without the exception's class name.
"""

__all__ = [
    'UserInputError', 'ConfigError', 'InvalidInputError', 'InputNotFoundError',
    'DownloadError'
]


class UserInputError(Exception):
    """Bad input the user can fix: tools print its message as one line."""


class ConfigError(UserInputError, ValueError):
    """A config file, or an override of it (``--cfg-options``), cannot
    work: the message names the key or file."""


class InvalidInputError(UserInputError, ValueError):
    """A file or value given on the command line is malformed."""


class InputNotFoundError(UserInputError, FileNotFoundError):
    """A file or folder that the command line or the config names does not
    exist."""


class DownloadError(UserInputError, RuntimeError):
    """Something a tool fetches by itself cannot be downloaded (no network):
    the message says how to give it a local copy instead."""
