# Copyright (c) cmdyseg contributors. All rights reserved.
import pytest

from cmdyseg.utils.optional import MissingDependencyError, OptionalImport


def test_available_module_and_attribute():
    dep = OptionalImport('os.path', 'join')
    assert 'not tried' in repr(dep)
    import os.path
    assert dep.available and dep.error is None
    assert dep.get() is os.path.join
    assert dep.require('joining') is os.path.join
    assert 'available' in repr(dep)


def test_missing_module_is_named_once():
    dep = OptionalImport(
        'cmdyseg_no_such_module',
        what='the test package',
        install='Install it with `pip install nothing`')
    assert not dep.available and dep.get() is None
    assert 'ModuleNotFoundError' in dep.error
    with pytest.raises(
            MissingDependencyError,
            match=r'the demo needs the test package, which does not import '
            r"here \(ModuleNotFoundError\(.*cmdyseg_no_such_module.*\)\)\. "
            r'Install it with `pip install nothing`') as info:
        dep.require('the demo')
    # both what a missing import is and what "cannot run here" was
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, RuntimeError)
    assert info.value.name == 'cmdyseg_no_such_module'
    assert 'missing' in repr(dep)


def test_module_without_the_attribute_counts_as_missing():
    dep = OptionalImport('os', 'no_such_function')
    assert not dep.available
    assert 'AttributeError' in dep.error
    with pytest.raises(ImportError, match='needs os.no_such_function'):
        dep.require('x')


def test_import_is_tried_once(monkeypatch):
    import importlib
    calls = []
    real = importlib.import_module

    def counting(name, *args):
        calls.append(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, 'import_module', counting)
    dep = OptionalImport('json')
    assert dep.available and dep.available and dep.get() is not None
    assert calls == ['json']
