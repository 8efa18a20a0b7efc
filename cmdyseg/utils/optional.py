# Copyright (c) cmdyseg contributors. All rights reserved.
"""Optional dependencies, handled one way.

An :class:`OptionalImport` names a module (or one attribute of it) that
some features need and an installation may lack -- mmcv's compiled ops,
``triton``, cmdyseg's own compiled CPU kernels. It imports it on first use
(never at import time of the code that declares it: ``triton`` must see
``TRITON_INTERPRET`` first, mmcv's ops are slow to load), remembers the
outcome and says, in one form everywhere, what is missing and how to get it.

Example::

    TRITON = OptionalImport(
        'triton', install='Install it with `pip install triton`.')
    if TRITON.available:
        ...
    triton = TRITON.require('the Triton CMDyConv backend')
"""
import importlib
from typing import Any, Optional, Tuple

from .errors import UserInputError


class MissingDependencyError(UserInputError, ImportError, RuntimeError):
    """A feature was asked for whose optional dependency does not import.

    Also a ``RuntimeError``: "this backend cannot run here", which callers
    may already catch as one.
    """


class OptionalImport:
    """A module, or one of its attributes, that may be missing.

    Args:
        name (str): absolute module name, e.g. ``'mmcv.ops'``.
        attr (str, optional): the attribute of the module that is needed
            (e.g. ``'modulated_deform_conv2d'``); a module that imports but
            lacks it counts as missing. Defaults to None (the module).
        what (str, optional): how messages call it. Defaults to the dotted
            name.
        install (str): how to get it, appended to the error message.

    The outcome of the first import attempt is kept in ``_result`` (a
    ``(object or None, error or None)`` pair); tests monkeypatch it to
    pretend that a dependency is missing.
    """

    def __init__(self,
                 name: str,
                 attr: Optional[str] = None,
                 what: Optional[str] = None,
                 install: str = '') -> None:
        self.name = name
        self.attr = attr
        self.what = what or (f'{name}.{attr}' if attr else name)
        self.install = install
        self._result: Optional[Tuple[Any, Optional[str]]] = None

    def _resolve(self) -> Tuple[Any, Optional[str]]:
        if self._result is None:
            try:
                obj = importlib.import_module(self.name)
                if self.attr is not None:
                    obj = getattr(obj, self.attr)
                self._result = (obj, None)
            # not only ImportError: a compiled module built for another
            # torch, or a broken install, fails with OSError, RuntimeError,
            # AttributeError, ...
            except Exception as e:
                self._result = (None, repr(e))
        return self._result

    def get(self) -> Any:
        """The module (or attribute), or None when it does not import."""
        return self._resolve()[0]

    @property
    def available(self) -> bool:
        return self.get() is not None

    @property
    def error(self) -> Optional[str]:
        """Why it does not import (the exception's repr), or None."""
        return self._resolve()[1]

    def missing_error(self, purpose: str) -> MissingDependencyError:
        """The error for ``purpose`` needing it while it is missing."""
        message = (f'{purpose} needs {self.what}, which does not import '
                   f'here ({self.error})')
        if self.install:
            message += f'. {self.install}'
        return MissingDependencyError(message, name=self.name)

    def require(self, purpose: str) -> Any:
        """The module (or attribute); raises :class:`MissingDependencyError`
        naming ``purpose``, the import error and how to install it."""
        obj = self.get()
        if obj is None:
            raise self.missing_error(purpose)
        return obj

    def __repr__(self) -> str:
        state = ('not tried' if self._result is None else
                 'available' if self.available else f'missing: {self.error}')
        return f'OptionalImport({self.what!r}, {state})'
