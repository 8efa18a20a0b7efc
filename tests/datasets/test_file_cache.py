# Copyright (c) cmdyseg contributors. All rights reserved.
"""The per-worker caches of decoded files (cmdyseg.datasets.cache): the
bound, the order, the key; the cached video transforms give mmaction's
frames; the cached mask reads give the file's masks."""
import os.path as osp

import mmcv
import numpy as np
import pytest
from mmaction.datasets.transforms import OpenCVDecode, OpenCVInit
from refer_data_fixtures import (MASK_A0_F9, MASK_A1_F9, block_mask,
                                 make_frame, write_a2d_h5, write_mp4)

import cmdyseg.datasets.cache as cache_mod
import cmdyseg.datasets.file_io as file_io
from cmdyseg.datasets.cache import BytesLRUCache, file_key
from cmdyseg.datasets.file_io import DataFileError, decode_video
from cmdyseg.datasets.transforms import CachedOpenCVDecode, CachedOpenCVInit
from cmdyseg.utils.errors import InvalidInputError


@pytest.fixture
def as_worker(monkeypatch):
    """This process caches as a DataLoader worker does."""
    monkeypatch.setattr(cache_mod, 'in_dataloader_worker', lambda: True)


def test_lru_keeps_at_most_max_bytes_least_recent_out():
    cache = BytesLRUCache(300, workers_only=False)
    loads = []

    def value(name, size):
        def load():
            loads.append(name)
            return np.zeros(size, np.uint8)
        return load

    a = cache.get_or_load('a', value('a', 100))
    cache.get_or_load('b', value('b', 100))
    cache.get_or_load('c', value('c', 100))
    assert cache.nbytes == 300 and len(cache) == 3
    assert cache.get_or_load('a', value('a', 100)) is a  # a hit, now newest
    cache.get_or_load('d', value('d', 100))  # b (least recent) goes
    assert loads == ['a', 'b', 'c', 'd']
    cache.get_or_load('b', value('b', 100))
    assert loads[-1] == 'b' and cache.nbytes == 300
    cache.get_or_load('a', value('a', 100))
    assert loads.count('a') == 1  # kept: used after c
    assert (cache.hits, cache.misses) == (2, 5)
    # too big for the cache: returned, not kept, nothing evicted
    big = cache.get_or_load('big', value('big', 301))
    assert big.size == 301 and 'big' not in cache._items and len(cache) == 3
    # values are read-only, hit or miss
    assert not a.flags.writeable and not big.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match='max_bytes must be an int'):
            BytesLRUCache(bad)


def test_load_caches_in_workers_only_and_keys_on_the_file(tmp_path,
                                                          monkeypatch):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'12345')
    cache = BytesLRUCache(1 << 20)
    calls = []

    def load():
        calls.append(1)
        return np.frombuffer(path.read_bytes(), np.uint8).copy()

    cache.load(str(path), load)
    cache.load(str(path), load)
    assert len(calls) == 2 and len(cache) == 0  # main process: no cache
    monkeypatch.setattr(cache_mod, 'in_dataloader_worker', lambda: True)
    first = cache.load(str(path), load)
    assert cache.load(str(path), load) is first and len(calls) == 3
    # another size (or mtime) is another file: read again
    path.write_bytes(b'123456')
    assert file_key(str(path))[2] == 6
    assert cache.load(str(path), load).size == 6 and len(calls) == 4


def test_decode_video_is_what_mmcv_reads_frame_by_frame(tmp_path):
    path = str(tmp_path / 'v.mp4')
    write_mp4(path, 9)
    count, frames = decode_video(path)
    reader = mmcv.VideoReader(path)
    assert count == len(reader) == 9
    assert frames.shape == (9, ) + make_frame(0).shape
    for i in (4, 0, 8, 2):  # random access, as OpenCVDecode reads
        np.testing.assert_array_equal(mmcv.VideoReader(path)[i], frames[i])
    with pytest.raises(DataFileError, match='video file does not exist'):
        decode_video(str(tmp_path / 'missing.mp4'))
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video')
    with pytest.raises(DataFileError):
        decode_video(str(bad))


@pytest.mark.parametrize('inds', [[3, 4, 5, 6], [0, 0, 1, 2], [7, 8, 8, 8],
                                  [[2, 3, 4]]])
def test_cached_transforms_give_mmactions_frames(tmp_path, as_worker, inds):
    path = str(tmp_path / 'v.mp4')
    write_mp4(path, 9)
    init, decode = CachedOpenCVInit(cache_mb=16), CachedOpenCVDecode()
    for _ in range(2):  # a miss, then a hit
        got = decode(init(dict(filename=path)) | dict(
            frame_inds=np.array(inds)))
        want = OpenCVInit()(dict(filename=path))
        assert got['total_frames'] == want['total_frames'] == 9
        want = OpenCVDecode()(want | dict(frame_inds=np.array(inds)))
        assert len(got['imgs']) == len(want['imgs']) == np.size(inds)
        for g, w in zip(got['imgs'], want['imgs']):
            np.testing.assert_array_equal(g, w)
        assert got['original_shape'] == want['original_shape']
        assert got['img_shape'] == want['img_shape']
        assert got['frame_inds'].ndim == 1 and 'video_frames' not in got
    assert (init.cache.misses, init.cache.hits) == (1, 1)
    with pytest.raises(InvalidInputError, match='cache_mb must be an int'):
        CachedOpenCVInit(cache_mb=-1)


def test_cached_decode_steps_back_past_the_decodable_frames():
    # 3 decoded frames of a container that reports 5: indices 3 and 4 get
    # frame 2, as OpenCVDecode's step back over None frames gives
    frames = np.stack([np.full((2, 2, 3), i, np.uint8) for i in range(3)])
    out = CachedOpenCVDecode()(
        dict(video_frames=frames, frame_inds=np.array([1, 3, 4])))
    assert [int(img[0, 0, 0]) for img in out['imgs']] == [1, 2, 2]


def test_cached_mask_reads_are_the_files_masks(tmp_path, as_worker,
                                               monkeypatch):
    monkeypatch.setattr(file_io, '_MASK_CACHE', BytesLRUCache(1 << 20))
    path = str(tmp_path / 'a' / '00009.h5')
    write_a2d_h5(path, [1, 2], [MASK_A0_F9, MASK_A1_F9], [11, 23])
    for _ in range(2):
        ids, masks, codes = file_io.read_a2d_masks(path, with_codes=True)
        assert ids == [1, 2] and codes == [11, 23]
        np.testing.assert_array_equal(masks, [MASK_A0_F9, MASK_A1_F9])
        masks[:] = 7  # the caller's copy: the cache keeps the file's
    assert file_io._MASK_CACHE.hits == 1
    ids, masks = file_io.read_a2d_masks(path)
    np.testing.assert_array_equal(masks[1], MASK_A1_F9)
    np.testing.assert_array_equal(
        file_io.load_a2d_instance_mask(path, [1], 2), MASK_A1_F9)
    # a bad 'id' key fails who asks for the codes only, cached or not
    bad = str(tmp_path / 'a' / '00010.h5')
    write_a2d_h5(bad, [1], [block_mask(0, 2, 0, 2)], [1.5])
    for _ in range(2):
        assert file_io.read_a2d_masks(bad)[0] == [1]
        with pytest.raises(DataFileError, match='non-integer'):
            file_io.read_a2d_masks(bad, with_codes=True)
    assert osp.isfile(bad)
