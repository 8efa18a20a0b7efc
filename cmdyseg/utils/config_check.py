# Copyright (c) cmdyseg contributors. All rights reserved.
"""Checks of a config and of its ``--cfg-options``, for tools/train.py and
tools/test.py.

mmengine accepts any key in ``--cfg-options`` and finds out only when a
class is built: a misspelt top-level key is silently ignored, and a
misspelt argument is a ``TypeError`` after the Runner has logged the whole
config. tools/train.py and tools/test.py run these checks in their
``merge_args``, around the merge of the options and before the Runner is
built (so before the config is logged and any dataset is indexed); they
build nothing and only read signatures and source.

* :func:`check_cfg_options` (the config before the merge, the options):
  every option's top-level key is in the config or is one that mmengine's
  Runner reads (:data:`RUNNER_KEYS`); a value that replaces an int, float
  or bool of the config is not a str that could not be read as one; a key
  below a list element uses an index in range, and no option reaches
  below a value that is not a section.
* :func:`merge_cfg_options`: ``cfg.merge_from_dict`` and ``KEY._delete_``
  on list elements too (mmengine honours ``_delete_`` on dict values only).
* :func:`check_config` (the merged config): every dict with a ``type`` of
  the model (recursively), the dataloaders (dataset, pipeline, sampler,
  collate_fn), loops, evaluators, optimizer wrapper and optimizer, the
  parameter schedulers, hooks, visualizer and log processor resolves in
  its registry in the config's ``default_scope`` and takes every key it is
  given, per the ``__init__`` signature of the class (or the signature of
  a registered function).

A violation raises :class:`cmdyseg.utils.errors.ConfigError` with one line
that names the key. Where what a class accepts cannot be told (an
``**kwargs`` that it does not pass on to ``super().__init__``), nothing is
reported.
"""
import ast
import difflib
import functools
import inspect
import textwrap
from typing import Any, Callable, Iterable, List, NamedTuple, Optional

from mmengine import registry as mm_registry
from mmengine.config import Config, ConfigDict

from cmdyseg.utils.errors import ConfigError

__all__ = [
    'RUNNER_KEYS', 'check_cfg_options', 'merge_cfg_options', 'check_config',
    'accepted_arguments'
]

DELETE_KEY = '_delete_'

#: Top-level keys that mmengine 0.10's Runner reads: the arguments
#: ``Runner.from_cfg`` takes from the config, and the keys the Runner reads
#: from ``self.cfg`` (model wrapper, SyncBN, ``torch.compile``, ...).
#: tests/utils/test_config_check.py checks this against mmengine's source.
RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'model_wrapper_cfg', 'sync_bn', 'find_unused_parameters',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'compile'
})

# the keys of a dataloader dict that mmengine's Runner.build_dataloader
# handles itself; the others go to torch's DataLoader
_DATALOADER_KEYS = ('dataset', 'sampler', 'batch_sampler', 'collate_fn',
                    'worker_init_fn', 'num_batch_per_epoch',
                    'disable_subprocess_warning')


def _show(value: Any) -> str:
    """A value as the user would type it after ``KEY=``."""
    return value if isinstance(value, str) else repr(value)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean {match[0]!r}?)' if match else ''


def _join(*parts) -> str:
    return '.'.join(str(p) for p in parts if p != '')


def _type_name(value) -> str:
    if isinstance(value, bool):
        return 'True or False'
    if isinstance(value, int):
        return 'an int'
    return 'a float'


# --------------------------------------------------------------------------
# --cfg-options against the config they are merged into
# --------------------------------------------------------------------------
def _deleted_prefixes(options: dict) -> List[str]:
    return [
        k[:-len(DELETE_KEY) - 1] for k, v in options.items()
        if k.endswith('.' + DELETE_KEY) and v is True
    ]


def check_cfg_options(cfg_before, options: dict,
                      config_name: Optional[str] = None) -> None:
    """Check ``options`` (``--cfg-options`` as parsed, ``{'a.b': value}``)
    against the config they will be merged into, before the merge.

    Raises ``ConfigError`` naming the option for: a top-level key that is
    neither in the config nor one of :data:`RUNNER_KEYS` (with the closest
    key, or the nested keys of that name); a str where the config has an
    int, a float or a bool; a ``_delete_`` that is not ``True``/``False`` or
    not below a key; a list index out of range; a key below a value that is
    not a section (a dict, or a list addressed by index) unless that value
    is replaced with ``KEY._delete_=True``.
    """
    config_name = config_name or getattr(cfg_before, 'filename',
                                         None) or 'the config'
    deleted = _deleted_prefixes(options)
    for key, value in options.items():
        item = f'--cfg-options {key}={_show(value)}'
        parts = key.split('.')
        if parts[0] == DELETE_KEY:
            raise ConfigError(
                f'{item}: {DELETE_KEY} goes after the section it replaces, '
                f'e.g. train_cfg.{DELETE_KEY}=True')
        if parts[-1] == DELETE_KEY and not isinstance(value, bool):
            raise ConfigError(f'{item}: {DELETE_KEY} takes True or False')
        top = parts[0]
        if top not in cfg_before and top not in RUNNER_KEYS:
            raise ConfigError(
                f'{item}: no top-level key {top!r} in {config_name}'
                f'{_top_level_hint(cfg_before, top)}')
        _check_option_path(cfg_before, key, parts, value, item, deleted)


def _top_level_hint(cfg, key: str) -> str:
    hint = _did_you_mean(key, set(cfg.keys()) | RUNNER_KEYS)
    if hint:
        return hint
    # a nested key given without its section, e.g. max_epochs=2
    nested = [p for p in _paths(cfg.to_dict()) if p.split('.')[-1] == key]
    if not nested:
        # an argument of a class the config builds, e.g. on_missing
        checker = _Checker(cfg, None)
        checker.run(cfg)
        nested = [_join(p, key) for p, names in checker.seen if key in names]
    if nested:
        shown = ', '.join(repr(p) for p in nested[:3])
        return f' (did you mean {shown}?)'
    return ''


def _paths(node, prefix=''):
    if isinstance(node, dict):
        for k, v in node.items():
            path = _join(prefix, k)
            yield path
            yield from _paths(v, path)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, _join(prefix, i))


def _is_section(node) -> bool:
    return isinstance(node, (dict, Config))


def _check_option_path(cfg, key, parts, value, item, deleted) -> None:
    node = cfg
    for depth, part in enumerate(parts):
        path = '.'.join(parts[:depth])
        here = '.'.join(parts[:depth + 1])
        if any(here == p or here.startswith(p + '.') for p in deleted):
            return  # replaced: what the config had does not matter
        if part == DELETE_KEY:
            return
        if _is_section(node):
            if part not in node:
                return  # a new key: nothing to compare with
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(
                    f'{item}: {path} is a list; address its items by '
                    f'index, e.g. {_join(path, 0, *parts[depth:])}')
            if int(part) >= len(node):
                raise ConfigError(
                    f'{item}: {path} has {len(node)} items (indices 0 to '
                    f'{len(node) - 1})')
            node = node[int(part)]
        else:
            raise ConfigError(
                f'{item}: {path} is {node!r} in the config, not a '
                f'section; set {path}=VALUE, or add {path}.{DELETE_KEY}=True '
                'to replace it with a new section')
    if isinstance(node, (bool, int, float)) and isinstance(value, str):
        raise ConfigError(
            f'{item}: {key} takes {_type_name(node)} (the config has '
            f'{node!r}), got the str {value!r}')


def merge_cfg_options(cfg, options: dict) -> None:
    """Merge ``options`` into ``cfg`` as ``cfg.merge_from_dict`` does, with
    ``KEY._delete_=True`` replacing ``KEY`` by the options below it.

    mmengine's ``Config.merge_from_dict`` honours ``_delete_`` where ``KEY``
    is a dict (``train_cfg._delete_=True train_cfg.type=IterBasedTrainLoop
    train_cfg.max_iters=6`` replaces the whole loop config); on a list
    element (``model.head.loss_decode.0._delete_=True``) it would keep the
    element and add a ``_delete_`` argument, so that element is emptied
    here first. A ``_delete_=False`` does nothing.
    """
    options = dict(options)
    for key in [k for k in options if k.split('.')[-1] == DELETE_KEY]:
        prefix = key[:-len(DELETE_KEY) - 1]
        parent, _, last = prefix.rpartition('.')
        container = _lookup(cfg, parent)
        if options[key] is not True:
            del options[key]
        elif (isinstance(container, list) and last.isdigit()
              and int(last) < len(container)):
            container[int(last)] = ConfigDict()
            del options[key]
    if options:
        cfg.merge_from_dict(options)


def apply_cfg_options(cfg, options: Optional[dict],
                      config_name: Optional[str] = None) -> None:
    """``--cfg-options`` as every tool applies them: checked against the
    config (:func:`check_cfg_options`), then merged
    (:func:`merge_cfg_options`). Nothing happens for no options."""
    if options:
        check_cfg_options(cfg, options, config_name)
        merge_cfg_options(cfg, options)


def _lookup(cfg, path: str):
    node = cfg
    for part in path.split('.') if path else ():
        if _is_section(node) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


# --------------------------------------------------------------------------
# what a class or function accepts
# --------------------------------------------------------------------------
class Accepted(NamedTuple):
    """The keyword arguments a callable accepts: ``names`` in signature
    order (the class's own, then those its ``**kwargs`` reach), and
    ``handled``: names its ``**kwargs`` code looks up itself (e.g. to
    raise its own, more specific error)."""
    names: tuple
    handled: frozenset


def _keyword_names(params, skip: int = 0, filled=()) -> List[str]:
    names = []
    positional = 0
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
            if positional <= skip or p.kind == p.POSITIONAL_ONLY:
                continue
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and \
                p.name not in filled:
            names.append(p.name)
    return names


@functools.lru_cache(maxsize=None)
def accepted_arguments(obj) -> Optional[Accepted]:
    """The keyword arguments ``obj(**kwargs)`` accepts, or None where that
    cannot be told.

    For a class: the parameters of its ``__init__``; where that takes
    ``**kwargs`` and passes them on to ``super().__init__`` (or
    ``Base.__init__(self, ...)``), also those of the next ``__init__`` in
    the MRO, less the ones the call fills itself, and so on up. An
    ``__init__`` whose ``**kwargs`` only appear in a test or a ``raise``
    (it refuses them) accepts no more; any other use of ``**kwargs``
    (stored, passed elsewhere, or unused) means None.
    """
    if inspect.isclass(obj):
        return _class_arguments(obj)
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return Accepted(tuple(_keyword_names(params)), frozenset())


def _unpatched(init):
    """The ``__init__`` behind torch's own patch of ``nn.Module.__init__``.

    Once torch.export / dynamo has run in the process (e.g. an ONNX
    export), ``nn.Module.__init__`` is replaced for good by a
    ``patched_init(self, *args, **kwargs)`` that calls the original (kept
    in its closure as ``init``) and tags the module: its ``**kwargs`` would
    make every module's arguments look unknowable.
    """
    if getattr(init, '__qualname__', '').endswith(
            'install_generation_tagging_init.<locals>.patched_init'):
        cells = dict(zip(init.__code__.co_freevars, init.__closure__ or ()))
        if 'init' in cells:
            return cells['init'].cell_contents
    return init


def _class_arguments(cls) -> Optional[Accepted]:
    mro = cls.__mro__
    names: List[str] = []
    handled = set()
    start, skip, filled = 0, 0, ()
    while True:
        owner = next((c for c in mro[start:] if '__init__' in vars(c)),
                     object)
        if owner is object:
            # object.__init__ takes nothing, unless a __new__ takes over
            if any('__new__' in vars(c) for c in mro[:-1]):
                return None
            return Accepted(tuple(names), frozenset(handled))
        init = _unpatched(inspect.unwrap(vars(owner)['__init__']))
        try:
            params = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        names += [
            n for n in _keyword_names(params, skip, filled) if n not in names
        ]
        var_kw = next((p.name for p in params if p.kind == p.VAR_KEYWORD),
                      None)
        if var_kw is None:
            return Accepted(tuple(names), frozenset(handled))
        var_pos = next(
            (p.name for p in params if p.kind == p.VAR_POSITIONAL), None)
        use = _kwargs_use(init, var_kw, var_pos)
        if use is None:
            return None
        calls, names_handled = use
        handled |= names_handled
        if calls is None:  # refused
            return Accepted(tuple(names), frozenset(handled))
        (target, skip, filled), = calls
        start = _next_index(mro, owner, target)
        if start is None:
            return None


def _next_index(mro, owner, target) -> Optional[int]:
    kind, name = target
    by_name = {c.__name__: i for i, c in enumerate(mro)}
    if kind == 'super':
        base = mro.index(owner) if name is None else by_name.get(name)
        return None if base is None else base + 1
    index = by_name.get(name)
    return index if index is not None and index > mro.index(owner) else None


def _init_target(func) -> Optional[tuple]:
    """('super', None | 'Cls') for ``super([Cls, self]).__init__``,
    ('class', 'Base') for ``Base.__init__``, else None."""
    if not (isinstance(func, ast.Attribute) and func.attr == '__init__'):
        return None
    value = func.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
            and value.func.id == 'super':
        if not value.args:
            return ('super', None)
        if isinstance(value.args[0], ast.Name):
            return ('super', value.args[0].id)
        return None
    if isinstance(value, ast.Name):
        return ('class', value.id)
    return None


def _const_str(node) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _kwargs_use(init, var_kw: str, var_pos: Optional[str]):
    """How ``init`` uses its ``**var_kw``: None (cannot tell), or
    ``(calls, handled)`` with ``calls`` a one-item list ``[(target,
    positional count, keyword names)]`` of the ``__init__`` call it passes
    them to, or None where it refuses them."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return None
    func = tree.body[0] if tree.body else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    parents = {}
    for node in ast.walk(func):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def inside(node, test: Callable) -> bool:
        while node in parents:
            parent = parents[node]
            if test(parent, node):
                return True
            node = parent
        return False

    def in_raise(parent, node):
        return isinstance(parent, ast.Raise)

    def in_test(parent, node):
        return isinstance(parent,
                          (ast.If, ast.While, ast.IfExp,
                           ast.Assert)) and node is parent.test

    calls, handled, refused = set(), set(), False
    for node in ast.walk(func):
        if not (isinstance(node, ast.Name) and node.id == var_kw):
            continue
        if not isinstance(node.ctx, ast.Load):
            return None  # rebound
        parent = parents.get(node)
        if isinstance(parent, ast.keyword) and parent.arg is None:
            call = parents[parent]
            target = _init_target(call.func)
            if target is None:
                return None  # passed to something else
            positional = 0
            for arg in call.args:
                if isinstance(arg, ast.Starred):
                    # the own *args: configs pass keywords only
                    if isinstance(arg.value, ast.Name) and \
                            arg.value.id == var_pos:
                        continue
                    return None
                positional += 1
            if target[0] == 'class':
                positional -= 1  # self
            calls.add((target, positional,
                       tuple(k.arg for k in call.keywords if k.arg)))
        elif isinstance(parent, ast.Subscript) and parent.value is node:
            key = _const_str(parent.slice)
            if key is not None:
                handled.add(key)
        elif isinstance(parent, ast.Attribute) and parent.value is node:
            call = parents.get(parent)
            if parent.attr in ('get', 'pop', 'setdefault') and \
                    isinstance(call, ast.Call) and call.func is parent:
                key = _const_str(call.args[0]) if call.args else None
                if key is not None:
                    handled.add(key)
            elif parent.attr != 'update':
                return None
        elif isinstance(parent, ast.Compare) and node in parent.comparators \
                and _const_str(parent.left) is not None:
            handled.add(_const_str(parent.left))
        elif inside(node, in_raise) or inside(node, in_test):
            refused = True
        else:
            return None
    if len(calls) > 1:
        return None
    if calls:
        return list(calls), frozenset(handled)
    if refused:
        return None, frozenset(handled)
    return None  # swallowed or unused: anything goes


# --------------------------------------------------------------------------
# the merged config
# --------------------------------------------------------------------------
class _Problem(NamedTuple):
    key: str
    message: str
    from_options: bool


def _registry_names(reg) -> List[str]:
    names, node = set(), reg
    while node is not None:
        names |= set(node.module_dict)
        node = node.parent
    for scope, child in reg.root.children.items():
        if scope != reg.scope:
            names |= {f'{scope}.{n}' for n in child.module_dict}
    return sorted(names)


def _removed_hint(path: str, key: str, names) -> str:
    # cmdyseg's backbones once took checkpoint=; their own error (raised
    # when they are built) spells out the replacement, this one comes first
    if key == 'checkpoint' and 'init_cfg' in names:
        init = _join(path, 'init_cfg')
        return (f'; pretrained weights load through init_cfg: '
                f'{init}.type=Pretrained {init}.checkpoint=PATH (and '
                f"{init}.prefix=backbone. for an mmaction2 recognizer's "
                'checkpoint)')
    return ''


class _Checker:
    """Walks the sections of a config the Runner builds, collecting
    problems."""

    def __init__(self, cfg, options: Optional[dict]):
        self.scope = cfg.get('default_scope') or 'mmengine'
        self.options = dict(options or {})
        self.problems: List[_Problem] = []
        # (path, accepted names) of every dict checked, for hints
        self.seen: List[tuple] = []

    # --- helpers -----------------------------------------------------
    def from_options(self, key: str) -> bool:
        return any(k == key or k.startswith(key + '.') for k in self.options)

    def add(self, key: str, message: str) -> None:
        self.problems.append(_Problem(key, message, self.from_options(key)))

    def resolve(self, root, type_, scope):
        """(class or function, registry) of ``type_``, None if unknown."""
        if not isinstance(type_, str):
            return (type_ if callable(type_) else None), None
        with root.switch_scope_and_registry(scope) as reg:
            try:
                return reg.get(type_), reg
            except Exception:  # get() raises for some names it cannot find
                return None, reg

    def delete_hint(self, path: str, key: str) -> str:
        """The hint for an argument from the file that the type the
        command line chose does not take."""
        if self.from_options(_join(path, key)) or \
                self.options.get(_join(path, DELETE_KEY)) is True:
            return ''
        changed = [
            _join(path, k) for k in ('type', 'by_epoch')
            if _join(path, k) in self.options
        ]
        if not changed:
            return ''
        section = path or 'the config'
        return (f'; {key!r} comes from the config file and --cfg-options '
                f'changed {changed[0]}: add {_join(path, DELETE_KEY)}=True to '
                f'replace the whole {section} section')

    def typed(self,
              path: str,
              node,
              root,
              default_type: Any = None,
              hidden: Iterable[str] = (),
              extra: Iterable[str] = (),
              strict: bool = True,
              check_args: bool = True):
        """Check one dict built through ``root``: its ``type`` resolves
        (reported only if ``strict``), and the class takes every key
        (``extra``: keys the builder takes out first; ``hidden``: arguments
        the builder fills, left out of the listing). Returns the class."""
        if not isinstance(node, dict):
            return None
        type_ = node.get('type', default_type)
        if type_ is None:
            if strict:
                self.add(path, f"{path}: needs a 'type' (a registered "
                         f'{root.name})')
            return None
        scope = node.get('_scope_', self.scope)
        cls, reg = self.resolve(root, type_, scope)
        if cls is None:
            if strict:
                names = _registry_names(reg) if reg is not None else []
                self.add(
                    _join(path, 'type'),
                    f'{_join(path, "type")}: {type_!r} is not a registered '
                    f'{root.name} in scope {scope!r}'
                    f'{_did_you_mean(type_, names)}')
            return None
        if check_args:
            self.arguments(path, node, cls, hidden, extra)
        return cls

    def arguments(self, path, node, cls, hidden=(), extra=(),
                  name=None) -> None:
        accepted = accepted_arguments(cls)
        if accepted is None:
            return
        self.seen.append((path, accepted.names))
        allowed = set(accepted.names) | accepted.handled | set(extra) | {
            'type', '_scope_'
        }
        listed = [n for n in accepted.names if n not in set(hidden)]
        name = name or getattr(cls, '__name__', repr(cls))
        for key in node:
            if key in allowed:
                continue
            takes = ', '.join(listed) if listed else 'no arguments'
            self.add(
                _join(path, key),
                f'{_join(path, key)}: {name} has no argument {key!r}'
                f'{_did_you_mean(key, listed)}; it takes: {takes}'
                f'{self.delete_hint(path, key)}'
                f'{_removed_hint(path, key, accepted.names)}')

    # --- sections ----------------------------------------------------
    def model(self, path, node, strict=True, extra=()) -> None:
        cls = self.typed(path, node, mm_registry.MODELS, strict=strict,
                         extra=extra)
        if cls is None:
            return
        # cmdyseg's modules build their sub-configs with MODELS.build; a
        # third-party module may take keys out first (mmdet's ResNet does
        # for dcn), so below it only cmdyseg's own modules are checked
        ours = getattr(cls, '__module__', '').startswith('cmdyseg.')
        for key, value in node.items():
            sub = _join(path, key)
            if key == 'init_cfg':
                self.init_cfg(sub, value)
                continue
            many = isinstance(value, (list, tuple))
            values = value if many else [value]
            if not all(isinstance(v, dict) and 'type' in v for v in values):
                continue
            for i, v in enumerate(values):
                p = _join(sub, i) if many else sub
                # mmcv's build_norm_layer takes requires_grad out
                more = ('requires_grad', ) if 'norm' in key else ()
                if ours:
                    self.model(p, v, strict=True, extra=more)
                else:
                    self.model_below_foreign(p, v, more)

    def model_below_foreign(self, path, node, extra) -> None:
        cls, _ = self.resolve(mm_registry.MODELS, node['type'],
                              node.get('_scope_', self.scope))
        if getattr(cls, '__module__', '').startswith('cmdyseg.'):
            self.model(path, node, extra=extra)

    def init_cfg(self, path, node) -> None:
        values = node if isinstance(node, (list, tuple)) else [node]
        for i, v in enumerate(values):
            if isinstance(v, dict):
                # mmengine's initialize() takes `override` out
                self.typed(
                    _join(path, i) if values is node else path,
                    v,
                    mm_registry.WEIGHT_INITIALIZERS,
                    extra=('override', ))

    def dataloader(self, path, node) -> None:
        if not isinstance(node, dict):
            return
        from torch.utils.data import DataLoader
        self.arguments(path, node, DataLoader, extra=_DATALOADER_KEYS,
                       name='DataLoader')
        self.dataset(_join(path, 'dataset'), node.get('dataset'))
        if isinstance(node.get('sampler'), dict):
            self.typed(_join(path, 'sampler'), node['sampler'],
                       mm_registry.DATA_SAMPLERS, hidden=('dataset', ))
        if isinstance(node.get('batch_sampler'), dict):
            self.typed(_join(path, 'batch_sampler'), node['batch_sampler'],
                       mm_registry.DATA_SAMPLERS, hidden=('sampler', ))
        for key in ('collate_fn', 'worker_init_fn'):
            if isinstance(node.get(key), dict):
                self.function(_join(path, key), node[key])

    def function(self, path, node) -> None:
        """A FUNCTIONS entry called through ``partial(fn, **cfg)``: its
        first argument comes from the caller."""
        fn = self.typed(path, node, mm_registry.FUNCTIONS, check_args=False)
        if fn is not None:
            accepted = accepted_arguments(fn)
            hidden = accepted.names[:1] if accepted else ()
            self.arguments(path, node, fn, hidden=hidden)

    def dataset(self, path, node) -> None:
        if self.typed(path, node, mm_registry.DATASETS) is None:
            return
        for i, t in enumerate(node.get('pipeline') or ()):
            self.transform(_join(path, 'pipeline', i), t)
        if isinstance(node.get('dataset'), dict):
            self.dataset(_join(path, 'dataset'), node['dataset'])
        for i, d in enumerate(node.get('datasets') or ()):
            self.dataset(_join(path, 'datasets', i), d)

    def transform(self, path, node) -> None:
        if isinstance(node, (list, tuple)):  # e.g. RandomChoice's lists
            for i, t in enumerate(node):
                self.transform(_join(path, i), t)
            return
        if self.typed(path, node, mm_registry.TRANSFORMS) is None:
            return
        transforms = node.get('transforms')
        if isinstance(transforms, (list, tuple)):
            self.transform(_join(path, 'transforms'), transforms)
        elif isinstance(transforms, dict):
            self.transform(_join(path, 'transforms'), transforms)

    def train_loop(self, node) -> None:
        if not isinstance(node, dict):
            return
        path = 'train_cfg'
        if 'type' in node and 'by_epoch' in node:
            changed = [
                k for k in ('type', 'by_epoch')
                if self.from_options(_join(path, k))
            ]
            hint = ''
            if len(changed) == 1:
                hint = (f'; add {path}.{DELETE_KEY}=True to --cfg-options to '
                        'replace the whole section')
            self.add(
                path, f"{path}: give either 'type' or 'by_epoch', not both "
                "(mmengine's Runner refuses both)" + hint)
            return
        if 'type' not in node and 'by_epoch' not in node:
            self.add(
                path, f"{path}: needs a 'type' (e.g. EpochBasedTrainLoop, "
                "IterBasedTrainLoop) or 'by_epoch'")
            return
        hidden = ('runner', 'dataloader')
        if 'type' in node:
            self.typed(path, node, mm_registry.LOOPS, hidden=hidden)
        else:
            # what Runner.build_train_loop picks without a type
            from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
            loop = EpochBasedTrainLoop if node['by_epoch'] else \
                IterBasedTrainLoop
            self.arguments(path, node, loop, hidden=hidden,
                           extra=('by_epoch', ))

    def evaluator(self, path, node) -> None:
        if isinstance(node, dict) and 'metrics' in node:
            self.typed(path, node, mm_registry.EVALUATOR,
                       default_type='Evaluator')
            node = node['metrics']
            path = _join(path, 'metrics')
            if isinstance(node, dict):
                self.typed(path, node, mm_registry.METRICS)
                return
        if isinstance(node, dict):
            self.typed(path, node, mm_registry.METRICS)
        elif isinstance(node, (list, tuple)):
            for i, m in enumerate(node):
                self.typed(_join(path, i), m, mm_registry.METRICS)

    def optim_wrapper(self, node) -> None:
        path = 'optim_wrapper'
        if not isinstance(node, dict):
            return
        constructor = node.get('constructor', 'DefaultOptimWrapperConstructor')
        if constructor != 'DefaultOptimWrapperConstructor':
            return  # a custom constructor reads the dict its own way
        self.typed(path, node, mm_registry.OPTIM_WRAPPERS,
                   default_type='OptimWrapper', hidden=('optimizer', ),
                   extra=('optimizer', 'paramwise_cfg', 'constructor'))
        optimizer = node.get('optimizer')
        if isinstance(optimizer, dict):
            cls = self.typed(_join(path, 'optimizer'), optimizer,
                             mm_registry.OPTIMIZERS, check_args=False)
            if cls is not None:
                accepted = accepted_arguments(cls)
                hidden = accepted.names[:1] if accepted else ()
                self.arguments(_join(path, 'optimizer'), optimizer, cls,
                               hidden=hidden)

    def param_scheduler(self, node, path='param_scheduler') -> None:
        if isinstance(node, dict) and 'type' not in node:
            # one list of schedulers per optimizer wrapper
            for name, value in node.items():
                self.param_scheduler(value, _join(path, name))
            return
        values = node if isinstance(node, (list, tuple)) else [node]
        for i, v in enumerate(values):
            self.typed(
                _join(path, i) if values is node else path,
                v,
                mm_registry.PARAM_SCHEDULERS,
                hidden=('optimizer', 'epoch_length'),
                extra=('convert_to_iter_based', 'epoch_length'))

    def hooks(self, default_hooks, custom_hooks) -> None:
        if isinstance(default_hooks, dict):
            for name, hook in default_hooks.items():
                self.typed(_join('default_hooks', name), hook,
                           mm_registry.HOOKS, extra=('priority', ))
        for i, hook in enumerate(custom_hooks or ()):
            self.typed(_join('custom_hooks', i), hook, mm_registry.HOOKS,
                       extra=('priority', ))

    def visualizer(self, node) -> None:
        if self.typed('visualizer', node, mm_registry.VISUALIZERS) is None:
            return
        for i, backend in enumerate(node.get('vis_backends') or ()):
            # mmengine's Visualizer takes `name` out
            self.typed(_join('visualizer.vis_backends', i), backend,
                       mm_registry.VISBACKENDS, extra=('name', ))

    def run(self, cfg) -> None:
        if isinstance(cfg.get('model'), dict):
            self.model('model', cfg['model'])
        if isinstance(cfg.get('data_preprocessor'), dict):
            self.model('data_preprocessor', cfg['data_preprocessor'])
        for split in ('train', 'val', 'test'):
            self.dataloader(f'{split}_dataloader',
                            cfg.get(f'{split}_dataloader'))
        self.train_loop(cfg.get('train_cfg'))
        for split, default in (('val', 'ValLoop'), ('test', 'TestLoop')):
            self.typed(f'{split}_cfg', cfg.get(f'{split}_cfg'),
                       mm_registry.LOOPS, default_type=default,
                       hidden=('runner', 'dataloader', 'evaluator'))
            self.evaluator(f'{split}_evaluator',
                           cfg.get(f'{split}_evaluator'))
        self.optim_wrapper(cfg.get('optim_wrapper'))
        if cfg.get('param_scheduler') is not None:
            self.param_scheduler(cfg['param_scheduler'])
        self.hooks(cfg.get('default_hooks'), cfg.get('custom_hooks'))
        if isinstance(cfg.get('visualizer'), dict):
            self.visualizer(cfg['visualizer'])
        self.typed('log_processor', cfg.get('log_processor'),
                   mm_registry.LOG_PROCESSORS, default_type='LogProcessor')


def check_config(cfg, options: Optional[dict] = None) -> None:
    """Check the sections of the merged ``cfg`` that the Runner builds:
    every ``type`` resolves in its registry in ``cfg.default_scope`` and
    takes every key it is given. ``options`` (the ``--cfg-options`` merged
    into ``cfg``) only shape the message: a problem they introduced comes
    first, and an argument from the file that a type changed on the
    command line does not take gets the ``KEY._delete_=True`` hint.

    Raises ``ConfigError`` with the first problem; builds nothing.
    """
    checker = _Checker(cfg, options)
    checker.run(cfg)
    if checker.problems:
        first = sorted(checker.problems, key=lambda p: not p.from_options)[0]
        raise ConfigError(first.message)
