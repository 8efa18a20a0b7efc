# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp

import cv2
from refer_data_fixtures import code_to_index, load_extract_tool, write_mp4


def test_extract_frames(tmp_path):
    tool = load_extract_tool()
    vdir, out = str(tmp_path / 'clips'), str(tmp_path / 'frames')
    write_mp4(osp.join(vdir, 'v1.mp4'), 5)
    write_mp4(osp.join(vdir, 'v2.mp4'), 3)
    assert tool.main([vdir, out]) == 0
    assert sorted(os.listdir(out)) == ['v1', 'v2']  # no temp folders left
    names = sorted(os.listdir(osp.join(out, 'v1')))
    assert names == [f'{i:05d}.jpg' for i in range(1, 6)]  # 1-based
    for i in range(5):
        img = cv2.imread(osp.join(out, 'v1', f'{i + 1:05d}.jpg'))  # BGR
        assert img.shape == (32, 48, 3)
        assert code_to_index(img[..., 2].mean()) == i
        assert abs(float(img[..., 0].mean()) - 200) < 8

    # existing videos are skipped, --overwrite re-extracts
    marker = osp.join(out, 'v2', 'marker')
    open(marker, 'w').close()
    assert tool.extract_video(osp.join(vdir, 'v2.mp4'), out) == ('v2', 0)
    assert osp.exists(marker)
    assert tool.extract_video(
        osp.join(vdir, 'v2.mp4'), out, overwrite=True) == ('v2', 3)
    assert not osp.exists(marker)
    assert sorted(os.listdir(out)) == ['v1', 'v2']


def test_extract_failures_leave_nothing(tmp_path, capsys):
    tool = load_extract_tool()
    vdir, out = str(tmp_path / 'clips'), str(tmp_path / 'frames')
    os.makedirs(vdir)
    with open(osp.join(vdir, 'bad.mp4'), 'wb') as f:
        f.write(b'\x00' * 100)
    assert tool.main([vdir, out, '--videos', 'bad', 'absent']) == 1
    err = capsys.readouterr().err
    assert 'bad.mp4' in err and 'absent.mp4' in err
    assert not osp.exists(out) or os.listdir(out) == []
