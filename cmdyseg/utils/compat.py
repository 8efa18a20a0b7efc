# Copyright (c) cmdyseg contributors. All rights reserved.
"""The one place where cmdyseg adapts its pinned dependency stack.

The stack (see ``requirements/mminstall.txt``) is torch 2.13, mmengine
0.10.7, mmcv 2.1.0 (built with ops) and mmaction2 1.2.0. Each fix below is
applied at ``import cmdyseg``, is idempotent, touches nothing on disk, and
says in one sentence why it exists:

1. :func:`stub_missing_mmaction_drn` -- mmaction2 1.2.0's wheel ships
   ``mmaction/models/localizers/__init__.py`` importing ``.drn.drn`` but not
   the ``drn`` folder itself, so ``import mmaction.models`` fails; a stand-in
   module whose ``DRN`` raises a clear error is put in ``sys.modules`` (only
   when the folder really is missing), which also avoids the torchvision
   import that the real DRN code would need.
2. :func:`disable_mmaction_multimodal` -- mmaction2 1.2.0 imports its VindLU
   models (and with them ``transformers``) whenever ``transformers>=4.28`` is
   installed, and those imports break with transformers >= 4.56 (helpers
   moved out of ``transformers.modeling_utils``) and need ``timm``; cmdyseg
   uses none of them, so mmaction's own "not installed" placeholders are
   registered instead (set ``CMDYSEG_MMACTION_MULTIMODAL=1`` to keep
   mmaction's default behaviour; with the pinned transformers 4.55.4 of
   ``requirements/text.txt`` it then needs only ``timm``).
3. :func:`allow_mmengine_checkpoint_types` -- torch >= 2.6 loads with
   ``weights_only=True``, which refuses the non-tensor objects that
   mmengine's checkpoints carry (``HistoryBuffer`` log buffers and numpy
   arrays/scalars in ``message_hub``), so ``resume`` fails with an
   ``UnpicklingError``; exactly those types are allow-listed, keeping
   ``weights_only=True`` so a checkpoint carrying any other pickled object
   is still refused.
4. :func:`install_local_checkpoint_loader` -- mmengine's local checkpoint
   loader lets ``torch.load``'s errors through, so a truncated file, a file
   of another kind or a refused pickle ends in a long traceback (the last
   one advising to load the file unsafely); every local load (``load_from``,
   ``resume``, ``init_cfg`` Pretrained, ``init_model``) is routed through
   :func:`cmdyseg.utils.checkpoint.load_from_local` instead, which loads
   with ``weights_only=True`` and raises a one-line ``CheckpointError``.

mmaction2's undeclared ``importlib_metadata`` import is a missing
requirement, not a code problem: it is listed in ``requirements/runtime.txt``.
"""
import importlib.util
import os
import os.path as osp
import sys
import types

_APPLIED = False


def _mmaction_package_dir():
    """Directory of the installed mmaction package, found without importing
    it (importing it runs mmcv's version checks)."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def stub_missing_mmaction_drn() -> bool:
    """Install a stand-in for ``mmaction.models.localizers.drn`` if the
    installed mmaction2 lacks it. Returns True when the stand-in was put in
    place."""
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return False
    pkg_dir = _mmaction_package_dir()
    if pkg_dir is None:
        return False
    drn_dir = osp.join(pkg_dir, 'models', 'localizers', 'drn')
    if osp.isdir(drn_dir):
        return False

    class DRN:  # noqa: D401 - a placeholder, see the error text
        """Stand-in for mmaction2's DRN localizer, absent from its wheel."""

        def __init__(self, *args, **kwargs):
            raise ImportError(
                'mmaction.models.localizers.drn is missing from the installed '
                f'mmaction2 wheel ({drn_dir} does not exist); cmdyseg put a '
                'stand-in there so that the rest of mmaction.models imports. '
                'Install mmaction2 from source to use DRN.')

    pkg = types.ModuleType(name)
    pkg.__path__ = []  # a package, so that ``.drn.drn`` resolves
    pkg.__cmdyseg_stub__ = True
    mod = types.ModuleType(name + '.drn')
    mod.DRN = DRN
    mod.__cmdyseg_stub__ = True
    pkg.drn = mod
    sys.modules[name] = pkg
    sys.modules[name + '.drn'] = mod
    return True


def disable_mmaction_multimodal() -> bool:
    """Make mmaction2 register placeholders for its transformers-based
    models instead of importing them. Returns True when it changed the
    flag."""
    if os.environ.get('CMDYSEG_MMACTION_MULTIMODAL') == '1':
        return False
    if importlib.util.find_spec('transformers') is None:
        return False  # mmaction2 already skips its multimodal models
    if _mmaction_package_dir() is None:
        return False
    if 'mmaction.models' in sys.modules:
        # Too late to influence the import; nothing to do.
        return False
    import mmaction.utils.dependency as dependency
    changed = bool(dependency.WITH_MULTIMODAL)
    dependency.WITH_MULTIMODAL = False
    return changed


# The non-tensor types found in mmengine 0.10.7 checkpoints: the message hub
# keeps its log scalars in HistoryBuffer objects holding numpy arrays, and
# numpy scalars appear in ``meta``. Names are resolved lazily because numpy
# 1.x and 2.x spell the private module differently.
_NUMPY_GLOBALS = (
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
)


def _history_buffer_getattr(obj, name):
    """Replacement for ``builtins.getattr`` while unpickling a checkpoint.

    HistoryBuffer pickles its ``_statistics_methods`` table as functions
    looked up on the class, i.e. ``getattr(HistoryBuffer, 'mean')``.
    Allowing the real ``getattr`` would let a checkpoint reach any attribute
    of any allowed object (for example ``Tensor.numpy`` or
    ``ndarray.tofile``), so only those lookups are answered.
    """
    import pickle

    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'}
    allowed.update(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r:.60}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed')


def _checkpoint_safe_globals():
    import numpy
    from mmengine.logging import HistoryBuffer
    allowed = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')]
    for module_name, attr in _NUMPY_GLOBALS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        obj = getattr(module, attr, None)
        if obj is not None:
            allowed.append((obj, f'{module_name}.{attr}'))
    # numpy >= 1.25 pickles dtypes of scalars/arrays through their classes
    dtypes = getattr(numpy, 'dtypes', None)
    if dtypes is not None:
        for attr in dir(dtypes):
            obj = getattr(dtypes, attr)
            if isinstance(obj, type) and issubclass(obj, numpy.dtype):
                allowed.append(obj)
    return allowed


def allow_mmengine_checkpoint_types() -> bool:
    """Allow-list, for ``torch.load(weights_only=True)``, exactly the
    non-tensor types that mmengine checkpoints carry. Returns False on a
    torch without ``add_safe_globals`` (< 2.4, where nothing is needed)."""
    import torch.serialization as ts
    if not hasattr(ts, 'add_safe_globals'):
        return False
    ts.add_safe_globals(_checkpoint_safe_globals())
    return True


def install_local_checkpoint_loader() -> bool:
    """Register cmdyseg's loader for local files with mmengine's
    ``CheckpointLoader``. Returns True when it registered it."""
    from .checkpoint import install_checkpoint_loader
    return install_checkpoint_loader()


def apply_compat_patches() -> None:
    """Apply every fix of this module once."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    stub_missing_mmaction_drn()
    disable_mmaction_multimodal()
    allow_mmengine_checkpoint_types()
    install_local_checkpoint_loader()
