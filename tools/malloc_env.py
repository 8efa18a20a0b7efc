# Copyright (c) cmdyseg contributors. All rights reserved.
"""glibc malloc settings for training and testing on the CPU: one place.

    python tools/malloc_env.py      prints the GLIBC_TUNABLES value to use

By default glibc gives a freed block of 128 KiB or more back to the
kernel straight away, or trims the top of the heap. It raises that
threshold only as such blocks are freed. A CPU training step allocates and
frees activations and gradients of several MiB in every layer. So each
step maps fresh pages, and the kernel zero-fills them again: page faults
and system time that change nothing in what is computed. These settings
keep freed blocks of up to 32 MiB in the heap (the largest mmap threshold
glibc accepts on 64-bit) and stop the heap from being trimmed. The cost
is that freed memory stays with the process until it exits. The
measurements are in configs/cmdyconv/README.md, "The CPU training step".

``tools/dist_train.sh``, ``tools/dist_test.sh`` and ``tools/main_job.py``
set these settings for the processes they start. With
``python tools/train.py`` directly, set them yourself::

    GLIBC_TUNABLES=$(python tools/malloc_env.py) python tools/train.py ...

The settings are added to any GLIBC_TUNABLES you have set, and the keys you
already set keep your values. CMDYSEG_MALLOC_TUNABLES=0 leaves the variable
as it is. glibc reads it when a process starts, so it must be in the
environment of the process, not set from inside it. Other C libraries
(macOS, musl) ignore it.
"""
import os
import sys
from typing import Dict, Mapping, Optional

TUNABLES = (
    ('glibc.malloc.mmap_threshold', str(32 * 1024 * 1024)),
    ('glibc.malloc.trim_threshold', str(16 * 1024**3)),
)


def tunables_value(current: str = '') -> str:
    """``current`` (a GLIBC_TUNABLES value) with :data:`TUNABLES` added
    for the keys it does not set."""
    parts = [p for p in current.split(':') if p]
    have = {p.split('=', 1)[0] for p in parts}
    parts += [f'{k}={v}' for k, v in TUNABLES if k not in have]
    return ':'.join(parts)


def tuned_environ(base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """A copy of ``base`` (default: ``os.environ``) for a child process,
    with the malloc settings in GLIBC_TUNABLES unless
    CMDYSEG_MALLOC_TUNABLES=0."""
    env = dict(os.environ if base is None else base)
    if env.get('CMDYSEG_MALLOC_TUNABLES', '1') != '0':
        env['GLIBC_TUNABLES'] = tunables_value(env.get('GLIBC_TUNABLES', ''))
    return env


if __name__ == '__main__':
    if sys.argv[1:] in (['-h'], ['--help']):
        print(__doc__)
    elif sys.argv[1:]:
        print(f'malloc_env.py: error: unexpected argument {sys.argv[1]!r} '
              '(it takes none; see --help)', file=sys.stderr)
        sys.exit(1)
    else:
        print(tuned_environ().get('GLIBC_TUNABLES', ''))
