# Copyright (c) cmdyseg contributors. All rights reserved.
"""``--cfg-options`` parsing (``CfgOptionsAction``) and the checks of
cmdyseg.utils.config_check: each rule on the real tiny config, no error on
any config of configs/cmdyconv/, and tools/train.py end to end (the rows
of the issue "Errors a user can read": a bad option fails before any
dataset is indexed, and ``_delete_`` switches to an iteration-based loop
that trains)."""
import argparse
import glob
import inspect
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
from load_script import load_script
from mmengine.config import Config

from cmdyseg.utils.config_check import (RUNNER_KEYS, accepted_arguments,
                                        check_cfg_options, check_config,
                                        merge_cfg_options)
from cmdyseg.utils.errors import ConfigError
from cmdyseg.utils.runtime import CfgOptionsAction, add_launch_args

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'cmdyconv')
TINY = osp.join(CONFIG_DIR,
                'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
ALL_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
# the tests address pipeline steps by index, as a user does; taken from the
# config so that a step added to it does not move them onto another one
_TRAIN_PIPELINE = [t['type'] for t in
                   Config.fromfile(TINY).train_dataloader.dataset.pipeline]
RESIZE = _TRAIN_PIPELINE.index('mmaction.Resize')
N_TRAIN_STEPS = len(_TRAIN_PIPELINE)


def parse(*items):
    """``--cfg-options ITEMS`` as tools/train.py parses them."""
    parser = argparse.ArgumentParser()
    add_launch_args(parser, 'a=1')
    return parser.parse_args(['--cfg-options', *items]).cfg_options


def apply(*items, path=TINY, name='CONFIG'):
    """What tools/train.py does with ``--cfg-options ITEMS``; returns the
    merged config."""
    cfg = Config.fromfile(path)
    options = parse(*items)
    check_cfg_options(cfg, options, name)
    merge_cfg_options(cfg, options)
    check_config(cfg, options)
    return cfg


def error_of(*items, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        apply(*items, **kwargs)
    message = str(info.value)
    assert '\n' not in message
    return message


# --------------------------------------------------------------------------
# CfgOptionsAction
# --------------------------------------------------------------------------
def test_action_parses_the_dictaction_syntax():
    from mmengine.config import DictAction
    items = [
        'a=1', 'b.c=x,y', 'd=[1,2]', 'e=(1,2)', 'f=true', 'g=None', 'h=1.5',
        'i=[(1,2),[a,b],c]', 'j=a=b', 'k="quoted"'
    ]
    ours = parse(*items)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    theirs = parser.parse_args(['--cfg-options', *items]).cfg_options
    assert ours == theirs
    # the action on its own, as tools/analysis/ use it
    parser = argparse.ArgumentParser()
    parser.add_argument('--opts', nargs='+', action=CfgOptionsAction)
    assert parser.parse_args(['--opts', *items]).opts == theirs
    assert ours['b.c'] == ['x', 'y'] and ours['e'] == (1, 2)
    assert ours['f'] is True and ours['g'] is None and ours['j'] == 'a=b'


@pytest.mark.parametrize('item, message', [
    ('train_cfg.max_epochs', "'train_cfg.max_epochs' is not KEY=VALUE"),
    ('=3', "'=3' has an empty key"),
    ('a..b=1', "'a..b=1' has an empty part in its key 'a..b'"),
    ('.a=1', "'.a=1' has an empty part"),
    ('a=[1,2', "'a=[1,2' has unbalanced brackets"),
    ('x.py', "'x.py' is not KEY=VALUE (no spaces around \"=\"): the "
     'config path goes before --cfg-options'),
])
def test_action_names_a_bad_item(item, message):
    with pytest.raises(ConfigError) as info:
        parse('a=1', item)
    assert str(info.value) == f'--cfg-options: {message}' or \
        str(info.value).startswith(f'--cfg-options: {message}')


def test_help_documents_the_rules_and_delete():
    parser = argparse.ArgumentParser()
    add_launch_args(parser, 'train_cfg.max_epochs=2')
    text = ' '.join(parser.format_help().split())
    assert 'train_cfg.max_epochs=2' in text
    assert 'KEY._delete_=True replaces the section KEY' in text
    assert 'train_cfg.type=IterBasedTrainLoop' in text


def test_other_tools_parse_cfg_options_with_the_action(capsys):
    tool = load_script(
        osp.join(ROOT, 'tools', 'analysis', 'evaluate_masks.py'),
        'cmdyseg_tools_evaluate_masks_cfg')
    args = tool.parse_args(
        [TINY, '--pred', 'empty', '--cfg-options', 'a.b=1,2'])
    assert args.cfg_options == {'a.b': [1, 2]}
    with pytest.raises(ConfigError, match="'a.b' is not KEY=VALUE"):
        tool.parse_args([TINY, '--pred', 'empty', '--cfg-options', 'a.b'])


# --------------------------------------------------------------------------
# _delete_
# --------------------------------------------------------------------------
def test_merge_from_dict_honours_delete_on_a_dict():
    # mmengine 0.10's Config.merge_from_dict replaces a dict section that
    # has _delete_=True: merge_cfg_options relies on it
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict({
        'train_cfg._delete_': True,
        'train_cfg.type': 'IterBasedTrainLoop',
        'train_cfg.max_iters': 6
    })
    assert cfg.train_cfg.to_dict() == dict(
        type='IterBasedTrainLoop', max_iters=6)


def test_delete_switches_the_loop():
    cfg = apply('train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop',
                'train_cfg.max_iters=6')
    assert cfg.train_cfg.to_dict() == dict(
        type='IterBasedTrainLoop', max_iters=6)
    # a section given in full by_epoch style, without a type
    cfg = apply('train_cfg._delete_=True', 'train_cfg.by_epoch=False',
                'train_cfg.max_iters=6')
    assert cfg.train_cfg.to_dict() == dict(by_epoch=False, max_iters=6)


def test_delete_on_a_list_element():
    cfg = apply('model.head.loss_decode._delete_=True',
                'model.head.loss_decode.type=DiceLoss')
    assert cfg.model.head.loss_decode.to_dict() == dict(type='DiceLoss')
    # mmengine would keep the element and add a `_delete_` argument
    cfg = apply(f'train_dataloader.dataset.pipeline.{RESIZE}._delete_=True',
                f'train_dataloader.dataset.pipeline.{RESIZE}.type='
                'mmaction.Resize',
                f'train_dataloader.dataset.pipeline.{RESIZE}.scale=(32,32)')
    assert cfg.train_dataloader.dataset.pipeline[RESIZE].to_dict() == dict(
        type='mmaction.Resize', scale=(32, 32))
    # False does nothing
    cfg = apply('train_cfg._delete_=False', 'train_cfg.max_epochs=3')
    assert cfg.train_cfg.to_dict() == dict(
        type='EpochBasedTrainLoop', max_epochs=3, val_interval=2)


def test_delete_replaces_a_none_and_an_item_of_a_list_of_dicts():
    cfg = Config.fromfile(TINY)
    cfg.model.backbone.init_cfg = None
    cfg.model.head.loss_decode = [dict(type='WeightedBCELoss', fg_weight=2.)]
    options = parse('model.backbone.init_cfg.type=Pretrained',
                    'model.backbone.init_cfg.checkpoint=x.pth')
    with pytest.raises(ConfigError, match='add model.backbone.init_cfg.'
                       '_delete_=True to replace it with a new section'):
        check_cfg_options(cfg, options)
    options.update(
        parse('model.backbone.init_cfg._delete_=True',
              'model.head.loss_decode.0._delete_=True',
              'model.head.loss_decode.0.type=DiceLoss'))
    check_cfg_options(cfg, options)
    merge_cfg_options(cfg, options)
    check_config(cfg, options)
    assert cfg.model.backbone.init_cfg.to_dict() == dict(
        type='Pretrained', checkpoint='x.pth')
    assert [d.to_dict() for d in cfg.model.head.loss_decode] == [
        dict(type='DiceLoss')
    ]


def test_delete_needs_a_section_and_a_bool():
    assert error_of('_delete_=True') == (
        '--cfg-options _delete_=True: _delete_ goes after the section it '
        'replaces, e.g. train_cfg._delete_=True')
    assert error_of('train_cfg._delete_=yes') == (
        '--cfg-options train_cfg._delete_=yes: _delete_ takes True or False')


# --------------------------------------------------------------------------
# check_cfg_options: top-level keys, value types, paths
# --------------------------------------------------------------------------
def test_unknown_top_level_key():
    assert error_of('trian_cfg.max_epochs=1') == (
        "--cfg-options trian_cfg.max_epochs=1: no top-level key 'trian_cfg' "
        "in CONFIG (did you mean 'train_cfg'?)")
    # a nested key without its section
    assert error_of('max_epochs=2') == (
        "--cfg-options max_epochs=2: no top-level key 'max_epochs' in "
        "CONFIG (did you mean 'train_cfg.max_epochs'?)")
    # an argument the config does not set, of a class it builds
    assert error_of('on_missing=ignore').endswith(
        "no top-level key 'on_missing' in CONFIG (did you mean "
        "'train_dataloader.dataset.on_missing', "
        "'val_dataloader.dataset.on_missing', "
        "'test_dataloader.dataset.on_missing'?)")
    message = error_of('nothing_like_it=1')
    assert message == ("--cfg-options nothing_like_it=1: no top-level key "
                       "'nothing_like_it' in CONFIG")


def test_runner_keys_are_accepted_without_being_in_the_config():
    cfg = apply('experiment_name=tiny', 'find_unused_parameters=True',
                'compile=False', 'load_from=x.pth', 'resume=True')
    assert cfg.experiment_name == 'tiny'


def test_runner_keys_cover_what_mmengine_reads():
    # RUNNER_KEYS is a list kept by hand: every top-level key that
    # Runner.from_cfg or the Runner's own methods read must be in it
    from mmengine.runner import Runner
    source = inspect.getsource(Runner)
    read = set(re.findall(r"\bcfg(?:\.get\(|\[)'(\w+)'", source))
    from_cfg = set(
        re.findall(r"\bcfg(?:\.get\(|\[)'(\w+)'",
                   inspect.getsource(Runner.from_cfg)))
    assert from_cfg and from_cfg <= RUNNER_KEYS
    assert read <= RUNNER_KEYS | {
        # keys of sub-configs that the regex also catches
        'by_epoch', 'type'
    }, read - RUNNER_KEYS


@pytest.mark.parametrize('item, message', [
    ('train_dataloader.batch_size=abc',
     "train_dataloader.batch_size takes an int (the config has 8), got the "
     "str 'abc'"),
    ('train_cfg.max_epochs=two',
     "train_cfg.max_epochs takes an int (the config has 2), got the str "
     "'two'"),
    ('optim_wrapper.optimizer.lr=fast',
     "optim_wrapper.optimizer.lr takes a float (the config has 0.001), got "
     "the str 'fast'"),
    ('model.head.kv_per_group=yes',
     'model.head.kv_per_group takes True or False (the config has True), '
     "got the str 'yes'"),
])
def test_a_str_for_a_number_or_bool_names_the_key(item, message):
    assert error_of(item) == f'--cfg-options {item}: {message}'


def test_values_of_the_right_type_pass():
    cfg = apply('train_cfg.max_epochs=3', 'optim_wrapper.optimizer.lr=1e-4',
                'model.head.kv_per_group=false', 'model.head.backend=torch',
                'train_dataloader.dataset.indices=2',
                'model.head.loss_decode.0.loss_weight=2')
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.model.head.kv_per_group is False


def test_paths_through_lists_and_values():
    assert error_of('train_dataloader.dataset.pipeline.12.scale=4') == (
        '--cfg-options train_dataloader.dataset.pipeline.12.scale=4: '
        f'train_dataloader.dataset.pipeline has {N_TRAIN_STEPS} items '
        f'(indices 0 to {N_TRAIN_STEPS - 1})')
    assert error_of('train_dataloader.dataset.pipeline.scale=4') == (
        '--cfg-options train_dataloader.dataset.pipeline.scale=4: '
        'train_dataloader.dataset.pipeline is a list; address its items by '
        'index, e.g. train_dataloader.dataset.pipeline.0.scale')
    assert error_of('train_cfg.max_epochs.x=4') == (
        '--cfg-options train_cfg.max_epochs.x=4: train_cfg.max_epochs is 2 '
        'in the config, not a section; set train_cfg.max_epochs=VALUE, or '
        'add train_cfg.max_epochs._delete_=True to replace it with a new '
        'section')
    # list items by index
    cfg = apply(f'train_dataloader.dataset.pipeline.{RESIZE}.scale=(32,32)')
    assert cfg.train_dataloader.dataset.pipeline[RESIZE].scale == (32, 32)


# --------------------------------------------------------------------------
# check_config: arguments of every built class
# --------------------------------------------------------------------------
@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_no_error_on_the_configs(path):
    check_config(Config.fromfile(path))


def test_no_error_on_the_configs_as_the_tools_change_them():
    # test.py --dump / --show-dir and train.py --amp / --no-validate add
    # these
    cfg = Config.fromfile(TINY)
    cfg.test_evaluator = [
        dict(type='ReferSegMetric', dump_rle='x.json'),
        dict(type='DumpResults', out_file_path='x.pkl')
    ]
    cfg.default_hooks.visualization = dict(
        type='ReferSegVisualizationHook', draw=True, test_out_dir='show')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = 'bfloat16'
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    check_config(cfg)


def test_unknown_argument_of_the_head():
    message = error_of('model.head.grups=4')
    assert message.startswith(
        "model.head.grups: DCMDyConvHead has no argument 'grups' (did you "
        "mean 'groups'?); it takes: in_channels, text_channels, groups, ")
    # what the head's **kwargs reach (BaseDyConvHead), not what
    # _CMDyConvHeadBase gets from DCMDyConvHead itself (deformable)
    takes = message.split('it takes: ')[1].split(', ')
    assert {'loss_decode', 'align_corners', 'offset_groups'} <= set(takes)
    assert 'deformable' not in takes
    assert error_of('model.head.deformable=True').startswith(
        "model.head.deformable: DCMDyConvHead has no argument 'deformable'")


@pytest.mark.parametrize('item, start', [
    ('train_dataloader.dataset.indicess=4',
     "train_dataloader.dataset.indicess: A2DSentencesDataset has no "
     "argument 'indicess' (did you mean 'indices'?); it takes: ann_file, "),
    ('test_dataloader.dataset.pipeline.4.scael=(8,8)',
     "test_dataloader.dataset.pipeline.4.scael: Resize has no argument "
     "'scael' (did you mean 'scale'?); it takes: scale, keep_ratio, "),
    ('train_dataloader.sampler.shufle=False',
     "train_dataloader.sampler.shufle: DefaultSampler has no argument "
     "'shufle' (did you mean 'shuffle'?); it takes: shuffle, seed, "
     "round_up"),
    ('val_dataloader.batch_sise=2',
     "val_dataloader.batch_sise: DataLoader has no argument 'batch_sise' "
     "(did you mean 'batch_size'?)"),
    ('train_dataloader.collate_fn.x=1',
     "train_dataloader.collate_fn.x: pseudo_collate has no argument 'x'; "
     "it takes: no arguments"),
    ('model.backbone.frozen_stage=1',
     "model.backbone.frozen_stage: ResNet3dEncoder has no argument "
     "'frozen_stage' (did you mean 'frozen_stages'?)"),
    ('model.neck.use_temporl=False',
     "model.neck.use_temporl: TemporalDeconNeck has no argument "),
    ('model.text_encoder.hiden_size=8',
     "model.text_encoder.hiden_size: GRUSentenceEncoder has no argument "
     "'hiden_size' (did you mean 'hidden_size'?)"),
    ('model.data_preprocessor.meen=1',
     "model.data_preprocessor.meen: ReferSegDataPreprocessor has no "
     "argument 'meen' (did you mean 'mean'?)"),
    ('model.head.loss_decode.0.fg_wieght=2',
     "model.head.loss_decode.0.fg_wieght: WeightedBCELoss has no argument "
     "'fg_wieght' (did you mean 'fg_weight'?)"),
    ('optim_wrapper.optimizer.lrr=0.1',
     "optim_wrapper.optimizer.lrr: Adam has no argument 'lrr' (did you "
     "mean 'lr'?); it takes: lr, betas, "),
    ('optim_wrapper.clip_gard=1',
     "optim_wrapper.clip_gard: OptimWrapper has no argument 'clip_gard' "
     "(did you mean 'clip_grad'?); it takes: accumulative_counts, "
     "clip_grad"),
    ('param_scheduler.0.eta_mn=0',
     "param_scheduler.0.eta_mn: CosineAnnealingLR has no argument "
     "'eta_mn' (did you mean 'eta_min'?); it takes: T_max, eta_min, "),
    ('default_hooks.logger.intervall=2',
     "default_hooks.logger.intervall: LoggerHook has no argument "
     "'intervall' (did you mean 'interval'?)"),
    ('val_evaluator.colect_device=cpu',
     "val_evaluator.colect_device: ReferSegMetric has no argument "
     "'colect_device' (did you mean 'collect_device'?)"),
    ('val_cfg.fp61=True',
     "val_cfg.fp61: ValLoop has no argument 'fp61' (did you mean 'fp16'?); "
     "it takes: fp16"),
    ('visualizer.alpah=0.3',
     "visualizer.alpah: ReferSegVisualizer has no argument 'alpah' (did you "
     "mean 'alpha'?)"),
    ('visualizer.vis_backends.0.save_dri=x',
     "visualizer.vis_backends.0.save_dri: LocalVisBackend has no argument "
     "'save_dri' (did you mean 'save_dir'?)"),
    ('log_processor.by_epch=False',
     "log_processor.by_epch: LogProcessor has no argument 'by_epch' (did "
     "you mean 'by_epoch'?)"),
])
def test_unknown_arguments_of_every_section(item, start):
    assert error_of(item).startswith(start)


def test_new_sections_given_on_the_command_line():
    # layer configs the head builds with mmcv's builders
    apply('model.head.act_cfg.type=ReLU', 'model.head.act_cfg.inplace=True')
    assert error_of('model.head.act_cfg.type=ReLU',
                    'model.head.act_cfg.inplce=True').startswith(
                        "model.head.act_cfg.inplce: ReLU has no argument "
                        "'inplce' (did you mean 'inplace'?); it takes: "
                        "inplace")
    # init_cfg through mmengine's WEIGHT_INITIALIZERS
    apply('model.backbone.init_cfg.type=Pretrained',
          'model.backbone.init_cfg.checkpoint=x.pth')
    assert error_of('model.backbone.init_cfg.type=Pretrained',
                    'model.backbone.init_cfg.checkpont=x.pth').startswith(
                        "model.backbone.init_cfg.checkpont: PretrainedInit "
                        "has no argument 'checkpont' (did you mean "
                        "'checkpoint'?)")


def test_custom_hooks_and_list_sections():
    cfg = Config.fromfile(TINY)
    cfg.custom_hooks = [
        dict(type='EmptyCacheHook', after_iter=True, befor_epoch=True)
    ]
    cfg.model.head.loss_decode = [
        dict(type='WeightedBCELoss'),
        dict(type='DiceLoss', los_weight=1.0)
    ]
    with pytest.raises(ConfigError, match=r"^model\.head\.loss_decode\.1"
                       r"\.los_weight: DiceLoss has no argument 'los_weight' "
                       r"\(did you mean 'loss_weight'\?\)"):
        check_config(cfg)
    cfg.model.head.loss_decode = dict(type='WeightedBCELoss')
    with pytest.raises(ConfigError, match=r"^custom_hooks\.0\.befor_epoch: "
                       r"EmptyCacheHook has no argument 'befor_epoch' \(did "
                       r"you mean 'before_epoch'\?\)"):
        check_config(cfg)


def test_unknown_type_is_named_with_the_closest():
    assert error_of('model.head.type=DCMDyConvHaed') == (
        "model.head.type: 'DCMDyConvHaed' is not a registered model in "
        "scope 'cmdyseg' (did you mean 'DCMDyConvHead'?)")
    assert error_of(f'train_dataloader.dataset.pipeline.{RESIZE}.type='
                    'mmaction.Resise').startswith(
                        f"train_dataloader.dataset.pipeline.{RESIZE}.type: "
                        "'mmaction.Resise' is not a registered transform in "
                        "scope 'cmdyseg' (did you mean 'mmaction.Resize'?)")
    assert error_of('optim_wrapper.optimizer.type=Adamm').startswith(
        "optim_wrapper.optimizer.type: 'Adamm' is not a registered optimizer")


def test_type_changed_without_delete_suggests_it():
    message = error_of('train_cfg.type=IterBasedTrainLoop',
                       'train_cfg.max_iters=6')
    assert message == (
        "train_cfg.max_epochs: IterBasedTrainLoop has no argument "
        "'max_epochs' (did you mean 'max_iters'?); it takes: max_iters, "
        "val_begin, val_interval, dynamic_intervals; 'max_epochs' comes "
        "from the config file and --cfg-options changed train_cfg.type: add "
        "train_cfg._delete_=True to replace the whole train_cfg section")
    message = error_of('model.head.type=DyConvHead')
    assert message.startswith(
        "model.head.kv_per_group: DyConvHead has no argument "
        "'kv_per_group'")
    assert message.endswith(
        'add model.head._delete_=True to replace the whole model.head '
        'section')
    # mmengine refuses both a type and by_epoch
    assert error_of('train_cfg.by_epoch=False') == (
        "train_cfg: give either 'type' or 'by_epoch', not both (mmengine's "
        "Runner refuses both); add train_cfg._delete_=True to --cfg-options "
        "to replace the whole section")
    assert error_of('train_cfg._delete_=True', 'train_cfg.max_iters=6') == (
        "train_cfg: needs a 'type' (e.g. EpochBasedTrainLoop, "
        "IterBasedTrainLoop) or 'by_epoch'")


def test_an_error_from_the_options_comes_first():
    cfg = Config.fromfile(TINY)
    cfg.model.neck.bad_in_file = 1
    options = {'model.head.grups': 4}
    cfg.merge_from_dict(options)
    with pytest.raises(ConfigError, match=r'^model\.head\.grups'):
        check_config(cfg, options)
    with pytest.raises(ConfigError, match=r'^model\.neck\.bad_in_file'):
        check_config(cfg)


def test_removed_checkpoint_argument_points_to_init_cfg():
    assert error_of('model.backbone.checkpoint=x.pth').endswith(
        '; pretrained weights load through init_cfg: '
        'model.backbone.init_cfg.type=Pretrained '
        'model.backbone.init_cfg.checkpoint=PATH (and '
        "model.backbone.init_cfg.prefix=backbone. for an mmaction2 "
        "recognizer's checkpoint)")


def test_no_error_where_kwargs_cannot_be_told():
    # mmaction2's ResNet3d passes **kwargs on to its layers: unknown
    apply('model.backbone.backbone.anything=1')
    # CMDySegmentor looks fg_weight up itself, to raise its own message
    apply('model.fg_weight=2')
    # mmcv's build_norm_layer takes requires_grad out
    apply('model.head.norm_cfg.type=BN', 'model.head.norm_cfg.requires_grad='
          'False')


# --------------------------------------------------------------------------
# accepted_arguments
# --------------------------------------------------------------------------
def test_accepted_arguments_follows_kwargs_up_the_mro():

    class Base:

        def __init__(self, a, b=1, *, c=2):
            pass

    class Passes(Base):

        def __init__(self, x, **kwargs):
            kwargs.setdefault('b', 3)
            super().__init__(x, **kwargs)

    class Fills(Base):

        def __init__(self, **kwargs):
            super(Fills, self).__init__(1, c=3, **kwargs)

    class Explicit(Base):

        def __init__(self, y=0, **kw):
            Base.__init__(self, y, **kw)

    class Refuses(Base):

        def __init__(self, z=0, **kwargs):
            if 'old' in kwargs:
                raise TypeError('old is gone')
            if kwargs:
                raise TypeError(f'unexpected {sorted(kwargs)}')
            super().__init__(z)

    class Swallows(Base):

        def __init__(self, **kwargs):
            super().__init__(1)

    class Stores(Base):

        def __init__(self, **kwargs):
            super().__init__(1)
            self.extra = kwargs

    class Inherits(Passes):
        pass

    def function(data, scale=1):
        pass

    def function_kwargs(data, **kwargs):
        pass

    assert accepted_arguments(Base).names == ('a', 'b', 'c')
    assert accepted_arguments(Passes).names == ('x', 'b', 'c')
    assert accepted_arguments(Inherits).names == ('x', 'b', 'c')
    assert accepted_arguments(Fills).names == ('b', )
    assert accepted_arguments(Explicit).names == ('y', 'b', 'c')
    refuses = accepted_arguments(Refuses)
    assert refuses.names == ('z', ) and refuses.handled == {'old'}
    assert accepted_arguments(Swallows) is None
    assert accepted_arguments(Stores) is None
    assert accepted_arguments(function).names == ('data', 'scale')
    assert accepted_arguments(function_kwargs) is None


def test_accepted_arguments_of_torch_modules():
    import torch.nn as nn

    # nn.Module.__init__ refuses **kwargs (call_super_init is False)
    assert accepted_arguments(nn.Tanh).names == ()
    assert 'inplace' in accepted_arguments(nn.ReLU).names


# --------------------------------------------------------------------------
# tools/train.py and tools/test.py
# --------------------------------------------------------------------------
train_tool = load_script(
    osp.join(ROOT, 'tools', 'train.py'), 'cmdyseg_tools_train_cfg_check')
test_tool = load_script(
    osp.join(ROOT, 'tools', 'test.py'), 'cmdyseg_tools_test_cfg_check')


def test_train_merge_args_checks(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    args = train_tool.parse_args([TINY, '--cfg-options', 'model.head.grups=4'])
    with pytest.raises(ConfigError, match=r"^model\.head\.grups"):
        train_tool.merge_args(Config.fromfile(TINY), args)
    args = train_tool.parse_args(
        [TINY, '--no-validate', '--cfg-options', 'trian_cfg.max_epochs=1'])
    with pytest.raises(ConfigError, match=f"in {re.escape(TINY)} "):
        train_tool.merge_args(Config.fromfile(TINY), args)


def test_test_merge_args_checks(monkeypatch, tmp_path):
    monkeypatch.setenv('LOCAL_RANK', '0')
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    args = test_tool.parse_args([
        TINY, str(ckpt), '--dump',
        str(tmp_path / 'x.pkl'), '--show-dir', 'show', '--cfg-options',
        'test_dataloader.batch_size=2'
    ])
    cfg = test_tool.merge_args(Config.fromfile(TINY), args)
    assert cfg.test_dataloader.batch_size == 2
    args = test_tool.parse_args(
        [TINY, str(ckpt), '--cfg-options', 'test_cfg.fp61=True'])
    with pytest.raises(ConfigError, match=r"^test_cfg\.fp61: TestLoop"):
        test_tool.merge_args(Config.fromfile(TINY), args)


def run_train(*items, timeout=180):
    return subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'train.py'), TINY, '--cfg-options', *items],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout)


@pytest.mark.parametrize('items, message', [
    (['trian_cfg.max_epochs=1'],
     "--cfg-options trian_cfg.max_epochs=1: no top-level key 'trian_cfg'"),
    (['model.head.grups=4'],
     "model.head.grups: DCMDyConvHead has no argument 'grups' (did you "
     "mean 'groups'?)"),
    (['train_dataloader.dataset.indicess=2'],
     "train_dataloader.dataset.indicess: A2DSentencesDataset has no "
     "argument 'indicess' (did you mean 'indices'?)"),
    (['train_dataloader.batch_size=abc'],
     "train_dataloader.batch_size takes an int (the config has 8), got the "
     "str 'abc'"),
    (['train_cfg.max_epochs=two'],
     "train_cfg.max_epochs takes an int (the config has 2), got the str "
     "'two'"),
    (['on_missing=ignore'],
     "--cfg-options on_missing=ignore: no top-level key 'on_missing'"),
    (['train_cfg.type=IterBasedTrainLoop', 'train_cfg.max_iters=6'],
     'add train_cfg._delete_=True to replace the whole train_cfg section'),
])
def test_train_tool_fails_before_any_dataset(items, message):
    proc = run_train(*items)
    # one line from cmdyseg.utils.cli.run_cli, status 1
    assert proc.returncode == 1
    (line, ) = proc.stderr.strip().splitlines()
    assert line.startswith('train.py: error: ') and message in line
    # nothing was built: no config dump of the Runner, no dataset indexed
    output = proc.stdout + proc.stderr
    assert 'Config:' not in output
    assert not re.search(r'\d+ samples', output)


@pytest.mark.parametrize('item, message', [
    ('train_cfg.max_epochs', "'train_cfg.max_epochs' is not KEY=VALUE"),
    ('=1', "'=1' has an empty key"),
])
def test_train_tool_rejects_a_malformed_option(item, message):
    proc = run_train('randomness.seed=0', item)
    assert proc.returncode == 1
    (line, ) = proc.stderr.strip().splitlines()
    assert line.startswith(f'train.py: error: --cfg-options: {message}')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from cmdyseg.synthetic import generate_synthetic_a2d
    root = str(tmp_path_factory.mktemp('synthetic_a2d_cfg'))
    generate_synthetic_a2d(
        root, seed=0, num_train=3, num_test=2, num_frames=12, height=48,
        width=64, overwrite=True)
    return root


def test_delete_switches_training_to_iterations(data_root, tmp_path,
                                                monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    work_dir = str(tmp_path / 'work')
    opts = [
        'train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop',
        'train_cfg.max_iters=2', 'randomness.seed=0',
        'default_hooks.logger.interval=1'
    ]
    for split in ('train', 'test'):
        opts += [
            f'{split}_dataloader.dataset.data_root={data_root}',
            f'{split}_dataloader.dataset.indices=2',
            f'{split}_dataloader.batch_size=1',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    train_tool.main(
        [TINY, '--work-dir', work_dir, '--no-validate', '--cfg-options'] +
        opts)
    dumped = Config.fromfile(osp.join(work_dir, osp.basename(TINY)))
    assert dumped.train_cfg.to_dict() == dict(
        type='IterBasedTrainLoop', max_iters=2)
    (log, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', '*_*.json'))
    with open(log) as f:
        iters = [json.loads(line).get('iter') for line in f if line.strip()]
    assert iters == [1, 2]


def test_accepted_arguments_after_torch_patches_module_init(monkeypatch):
    """torch.export / dynamo replaces nn.Module.__init__ by a
    ``patched_init(self, *args, **kwargs)`` for the rest of the process
    (an ONNX export does it): the arguments are still read through it."""
    import torch.nn as nn
    from torch._dynamo.mutation_guard import install_generation_tagging_init
    monkeypatch.setattr(nn.Module, '__init__', nn.Module.__init__)
    monkeypatch.setattr(nn.Module, '__setstate__', nn.Module.__setstate__)
    monkeypatch.setattr(
        nn.Module, '___needs_generation_tag_patch', True, raising=False)
    install_generation_tagging_init()
    assert nn.Module.__init__.__name__ == 'patched_init'
    assert accepted_arguments(nn.Tanh).names == ()
    assert 'in_features' in accepted_arguments(nn.Linear).names
