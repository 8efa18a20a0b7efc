# Copyright (c) cmdyseg contributors. All rights reserved.
"""Per-process caches of decoded data files, bounded by bytes.

A training sample of the A2D-format datasets opens its video and its
annotated frame's ``.h5`` mask file (twice with the action map); a video
is sampled many times per epoch (the embedded data: ~18 samples per
video). Each dataloader worker keeps what it decoded here, keyed by the
file's path, modification time and size (a regenerated file is read
again), so a file is decoded about once per worker and epoch (workers
are made anew each epoch). Only dataloader workers cache: the files do not
change while they run, whereas a program or test in the main process may
rewrite a file within the file system's timestamp granularity (a few ms)
with the same size. The values are made read-only: callers select or
copy, never write.
"""
import os
from collections import OrderedDict
from typing import Any, Callable, Hashable, Tuple

import numpy as np


def file_key(path: str) -> Tuple[str, int, int]:
    """``(path, mtime_ns, size)``: what a cached decode of ``path`` is
    valid for."""
    st = os.stat(path)
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 64  # ints, small lists: their size does not matter here


def _freeze(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _freeze(v)
    return value


def in_dataloader_worker() -> bool:
    """Whether this process is a torch DataLoader worker."""
    import torch.utils.data
    return torch.utils.data.get_worker_info() is not None


class BytesLRUCache:
    """Least-recently-used cache of at most ``max_bytes`` (numpy values
    counted by ``nbytes``); ``max_bytes=0`` caches nothing.

    Args:
        max_bytes (int): The bound. A value larger than it is returned
            but not kept.
        workers_only (bool): :meth:`load` caches only in DataLoader
            workers (see the module doc). Defaults to True.
    """

    def __init__(self, max_bytes: int, workers_only: bool = True) -> None:
        if isinstance(max_bytes, bool) or not isinstance(
                max_bytes, int) or max_bytes < 0:
            raise ValueError(
                f'max_bytes must be an int >= 0, got {max_bytes!r}')
        self.max_bytes = max_bytes
        self.workers_only = workers_only
        self._items: 'OrderedDict[Hashable, Tuple[Any, int]]' = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The value cached for ``key``, else ``load()`` (kept when it
        fits; frozen either way, so a miss and a hit behave alike)."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]
        self.misses += 1
        value = _freeze(load())
        size = _nbytes(value)
        if size <= self.max_bytes:
            self._items[key] = (value, size)
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self.nbytes -= old
        return value

    def load(self, path: str, load: Callable[[], Any]) -> Any:
        """``load()``, the decode of file ``path``, through the cache
        (keyed by :func:`file_key`) where this process caches."""
        if self.workers_only and not in_dataloader_worker():
            return load()
        return self.get_or_load(file_key(path), load)
