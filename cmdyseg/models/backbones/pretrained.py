# Copyright (c) cmdyseg contributors. All rights reserved.
"""Pretrained weights of the video backbones through mmengine's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``.

mmengine's own ``PretrainedInit`` loads with ``strict=False`` and only logs
what did not match, so a checkpoint of another architecture, or one read
with the wrong ``prefix``, leaves the backbone at its random initialisation
without an error. For a video encoder whose early stages are frozen that
failure would be silent forever, so :class:`CheckedPretrainedMixin` takes
the ``Pretrained`` entries of ``init_cfg`` out of mmengine's hands and loads
them with :func:`load_checked_state`, which refuses such a checkpoint and
names the file and what it found.
"""
import logging
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import PretrainedInit, initialize, update_init_info
from mmengine.runner.checkpoint import CheckpointLoader

from cmdyseg.utils.errors import UserInputError

PRETRAINED_KEYS = ('type', 'checkpoint', 'prefix', 'map_location')


class PretrainedMismatchError(UserInputError, ValueError):
    """A pretrained checkpoint does not fit the module it is loaded into."""


class LoadResult(NamedTuple):
    """What :func:`load_checked_state` did; names are relative to the module
    the weights were loaded into."""
    loaded: int  # module tensors loaded (BatchNorm counters not counted)
    missing_keys: List[str]  # module tensors the checkpoint lacks
    unexpected_keys: List[str]  # checkpoint tensors the module lacks
    skipped_keys: List[str]  # checkpoint tensors dropped on purpose


def removed_checkpoint_error(owner: str, kwargs: dict,
                             prefix: Optional[str]) -> TypeError:
    """The error for a constructor call with arguments it does not take,
    with the replacement spelled out for the removed ``checkpoint=``."""
    if 'checkpoint' not in kwargs:
        return TypeError(f'{owner}.__init__() got unexpected keyword '
                         f'argument(s) {sorted(kwargs)}')
    path = kwargs['checkpoint']
    path = repr(path) if path is not None else '...'
    prefix = f', prefix={prefix!r}' if prefix else ''
    return TypeError(
        f'{owner} no longer takes checkpoint=; load pretrained weights with '
        f"init_cfg=dict(type='Pretrained', checkpoint={path}{prefix}) "
        '(or drop the argument to train from scratch)')


def is_pretrained_cfg(cfg) -> bool:
    return isinstance(cfg, dict) and cfg.get('type') in ('Pretrained',
                                                         PretrainedInit)


def split_init_cfg(init_cfg) -> Tuple[List[dict], List[dict]]:
    """``init_cfg`` (None, a dict or a list of dicts) as its ``Pretrained``
    entries and the others, in their original order."""
    if init_cfg is None:
        return [], []
    cfgs = [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
    pretrained = [c for c in cfgs if is_pretrained_cfg(c)]
    others = [c for c in cfgs if not is_pretrained_cfg(c)]
    return pretrained, others


def pretrained_kwargs(cfg: dict, owner: str) -> dict:
    """``checkpoint``, ``prefix`` and ``map_location`` of a ``Pretrained``
    config, the keys mmengine's ``PretrainedInit`` accepts."""
    unknown = sorted(set(cfg) - set(PRETRAINED_KEYS))
    if unknown or not cfg.get('checkpoint'):
        raise TypeError(
            f"{owner}: init_cfg dict(type='Pretrained', ...) takes "
            f"checkpoint (required), prefix and map_location; got {dict(cfg)}")
    return dict(
        checkpoint=cfg['checkpoint'],
        prefix=cfg.get('prefix'),
        map_location=cfg.get('map_location', 'cpu'))


def read_state_dict(filename: str,
                    prefix: Optional[str] = None,
                    map_location: str = 'cpu',
                    owner: str = 'backbone') -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint (a state dict, or a dict with one under
    ``'state_dict'``), without a leading ``module.`` (DataParallel) and,
    with ``prefix``, only the keys under it, the prefix removed.

    Raises:
        PretrainedMismatchError: if the file holds no state dict, or no key
            under ``prefix``; the message names the file and its first keys.
    """
    ckpt = CheckpointLoader.load_checkpoint(
        filename, map_location=map_location)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise PretrainedMismatchError(
            f'{owner}: checkpoint {filename} is not a state dict nor a dict '
            f"with 'state_dict' (got {type(ckpt).__name__})")
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        selected = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        if not selected:
            raise PretrainedMismatchError(
                f"{owner}: checkpoint {filename} holds no '{prefix}*' weights "
                f'(first keys: {_examples(state)}); check init_cfg prefix')
        state = selected
    return state


def _examples(keys: Sequence[str], n: int = 5) -> str:
    keys = list(keys)
    more = f', ... ({len(keys)} in all)' if len(keys) > n else ''
    return (', '.join(keys[:n]) or 'none') + more


def _guess_prefix(found: Sequence[str], wanted: Sequence[str]) -> str:
    """A hint when the checkpoint's keys are the module's under a prefix
    (e.g. a recognizer checkpoint read without ``prefix='backbone.'``)."""
    if not wanted:
        return ''
    for key in found:
        if key.endswith('.' + wanted[0]):
            prefix = key[:-len(wanted[0])]
            return (f"; its keys look like the module's under {prefix!r}: "
                    f'try init_cfg prefix={prefix!r}')
    return ''


def load_checked_state(module: nn.Module,
                       state: Dict[str, torch.Tensor],
                       filename: str,
                       owner: str,
                       min_fraction: float = 1.0,
                       skip: Optional[Callable[[str], bool]] = None
                       ) -> LoadResult:
    """Copy ``state`` into ``module``, refusing a checkpoint that does not
    fit.

    Keys for which ``skip(key)`` is true are dropped first (layers the
    module does not build on purpose). BatchNorm's ``num_batches_tracked``
    counters are loaded when present and never required.

    Args:
        module: the module receiving the weights.
        state: checkpoint tensors, keys relative to ``module``.
        filename: the checkpoint, for messages.
        owner: the class name, for messages.
        min_fraction: the share of the module's tensors the checkpoint must
            hold (1.0: all of them); missing ones below that are warnings.
        skip: predicate on checkpoint keys to drop.

    Raises:
        PretrainedMismatchError: too few of the module's tensors are in the
            checkpoint, or a tensor has another shape; the message names the
            file, the missing keys and the keys found.
    """
    skipped = sorted(k for k in state if skip is not None and skip(k))
    dropped = set(skipped)
    state = {k: v for k, v in state.items() if k not in dropped}
    own = module.state_dict()
    required = [k for k in own if not k.endswith('num_batches_tracked')]
    missing = [k for k in required if k not in state]
    unexpected = sorted(k for k in state if k not in own)
    found = len(required) - len(missing)
    if found < min_fraction * len(required) or (required and not found):
        need = 'all' if min_fraction >= 1 else f'at least {min_fraction:.0%}'
        raise PretrainedMismatchError(
            f'{owner}: checkpoint {filename} holds {found} of the '
            f'{len(required)} tensors of the module ({need} are needed); '
            f'missing e.g. {_examples(missing)}; the checkpoint has '
            f'{_examples(list(state))}' + _guess_prefix(list(state), missing))
    for key in own:
        if key in state and tuple(state[key].shape) != tuple(own[key].shape):
            raise PretrainedMismatchError(
                f'{owner}: checkpoint {filename}: {key} has shape '
                f'{tuple(state[key].shape)}, the module expects '
                f'{tuple(own[key].shape)} (another depth or width?)')
    module.load_state_dict({k: state[k]
                            for k in own if k in state}, strict=False)
    result = LoadResult(found, missing, unexpected, skipped)
    print_log(
        f'{owner}: loaded {found} of {len(required)} tensors from '
        f'{filename}' +
        (f' ({len(skipped)} of layers not built skipped)' if skipped else ''),
        logger='current')
    for kind, keys in (('missing', missing), ('unexpected', unexpected)):
        if keys:
            print_log(
                f'{owner}: {len(keys)} {kind} keys loading {filename}: '
                f'{", ".join(keys)}',
                logger='current',
                level=logging.WARNING)
    return result


class CheckedPretrainedMixin:
    """``init_weights`` for a :class:`~mmengine.model.BaseModule` whose
    ``Pretrained`` init_cfg entries are loaded by ``self.load_pretrained``
    (checked) instead of mmengine's ``PretrainedInit``.

    Order: the module's own initialisation (``BaseModule.init_weights``
    with children, e.g. mmaction2's ResNet3d scheme), then the other
    ``init_cfg`` entries (Kaiming, Constant, ...), then the ``Pretrained``
    entries. The other entries run after the children on purpose: a child
    whose ``init_weights`` ignores ``init_cfg`` and re-initialises all its
    layers (mmaction2's ResNet3d) would otherwise overwrite them.
    """

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> LoadResult:
        raise NotImplementedError

    def init_weights(self) -> None:
        if self.is_init:  # mmengine warns about the second call
            super().init_weights()
            return
        owner = type(self).__name__
        pretrained, others = split_init_cfg(self.init_cfg)
        kwargs = [pretrained_kwargs(cfg, owner) for cfg in pretrained]
        saved = self.init_cfg
        self.init_cfg = None
        try:
            super().init_weights()
        finally:
            self.init_cfg = saved
        if others:
            initialize(self, others)
        for kw in kwargs:
            self.load_pretrained(**kw)
            if hasattr(self, '_params_init_info'):
                update_init_info(
                    self, init_info=f'{owner}: load from {kw["checkpoint"]}')
