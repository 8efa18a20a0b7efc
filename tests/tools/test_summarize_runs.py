# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/analysis/summarize_runs.py: mean +- std of main-job runs."""
import json
import os.path as osp

import pytest
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
tool = load_script(
    osp.join(ROOT, 'tools', 'analysis', 'summarize_runs.py'),
    'cmdyseg_tools_summarize_runs')
main_job = load_script(osp.join(ROOT, 'tools', 'main_job.py'),
                       'cmdyseg_tools_main_job_for_summary')


def _run(tmp_path, name, model_p5, video_j=None):
    """A work dir as main_job.py leaves it: verdicts.json from the tables
    evaluate_masks.py writes (and scores_video_level.json)."""
    def table(cue_values):
        return {cue: {f'{cue}/P@0.5': v, f'{cue}/P@0.9': v / 10,
                      'num_samples': 4} for cue, v in cue_values.items()}

    tables = dict(empty=table({'all': 0., 'motion': 0.}),
                  union=table({'all': 30., 'motion': 25.}),
                  model=table(model_p5))
    d = tmp_path / name
    d.mkdir()
    verdicts = main_job.cue_verdicts(tables, keys=('P@0.5', 'P@0.9'))
    (d / 'verdicts.json').write_text(json.dumps(verdicts))
    if video_j is not None:
        (d / 'scores_video_level.json').write_text(json.dumps(
            {'all': {'num_expressions': 3, 'J': video_j, 'F': 50.,
                     'J&F': (video_j + 50.) / 2}}))
    return str(d)


def test_mean_std_and_verdicts_over_runs(tmp_path, capsys):
    dirs = [
        _run(tmp_path, 's0', {'all': 40., 'motion': 20.}, 40.),
        _run(tmp_path, 's1', {'all': 50., 'motion': 30.}, 50.),
        _run(tmp_path, 's2', {'all': 60., 'motion': 28.}, 60.),
    ]
    out = tmp_path / 'summary.json'
    tool.main(dirs + ['--label', 'tiny', '--out', str(out)])
    summary = json.loads(out.read_text())
    assert summary['num_runs'] == 3
    p5 = summary['cues']['all']['metrics']['P@0.5']
    assert p5['values'] == [40., 50., 60.]
    assert p5['mean'] == pytest.approx(50.)
    assert p5['std'] == pytest.approx(10.)  # sample std (ddof = 1)
    assert p5['union'] == 30. and p5['empty'] == 0.
    assert summary['cues']['all']['verdict'] == 'above'
    assert summary['cues']['all']['runs_above'] == 3
    motion = summary['cues']['motion']
    # mean 26 > 25 at P@0.5, but P@0.9 2.6 > 2.5 too: above on the means,
    # while run s0 (20 < 25) was below
    assert motion['metrics']['P@0.5']['mean'] == pytest.approx(26.)
    assert motion['verdict'] == 'above'
    assert motion['runs_above'] == 2
    jf = summary['video_level']['all']['J']
    assert jf['mean'] == pytest.approx(50.) and jf['std'] == pytest.approx(
        10.)
    text = capsys.readouterr().out
    assert '| all | tiny (3 runs) | 50.0 +- 10.0 | 5.0 +- 1.0 |' in text
    assert 'motion: mean ABOVE the union baseline on every metric; above ' \
        'on every metric in 2 of 3 runs' in text


def test_below_on_the_mean_is_named(tmp_path, capsys):
    dirs = [_run(tmp_path, 's0', {'all': 20., 'motion': 10.})]
    tool.main(dirs)
    text = capsys.readouterr().out
    assert 'all: mean BELOW the union baseline on P@0.5 (20.0 vs 30.0), ' \
        'P@0.9 (2.0 vs 3.0); above on every metric in 0 of 1 runs' in text
    # one run: std 0
    assert '| all | model (1 runs) | 20.0 +- 0.0 | 2.0 +- 0.0 |' in text


def test_missing_run_is_one_line(tmp_path, capsys):
    status = tool.run_cli(tool.main, [str(tmp_path / 'nope')], exit=False)
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'verdicts.json: not found' in err[0]
