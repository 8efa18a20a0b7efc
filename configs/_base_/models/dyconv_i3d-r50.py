# Table 3, "Baseline (DyConv)": Gavrilyuk et al.'s 1x1 dynamic conv with a
# tanh text kernel and 8 coordinate channels, on mmaction2's I3D-R50 as the
# video encoder (layer3, 1024 channels at stride 16, stands in for Inception
# I3D's mixed_4f) and without the temporal branch. This file defines the
# whole model; each row below it in Table 3 inherits the row above and
# changes only what that row adds:
#   dyconv -> group-dyconv -> cmdyconv -> dcmdyconv -> dcmdyconv-temporal
#   (-> dcmdyconv-temporal_i3d-inception, the paper's video encoder)
#
# I3D-R50 inflation as mmaction2's i3d_r50 recipe, except pool1_stride_t=1:
# 16 frames then give T' = 4 ConvLSTM steps at layer3, as mixed_4f does
# (mmaction2's recipe gives T' = 2).
d_m = 256  # D_M, channels of F_V^M
d_t = 600  # D_T, bi-GRU 2 x 300

model = dict(
    type='CMDySegmentor',
    data_preprocessor=dict(
        type='ReferSegDataPreprocessor',
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375)),
    # trained from scratch by default (no hub is reachable here: download
    # the weights yourself); an mmaction2 I3D-R50 Kinetics recognizer
    # checkpoint loads with init_cfg=dict(type='Pretrained',
    # checkpoint=PATH, prefix='backbone.') in the ResNet3dEncoder
    backbone=dict(
        type='ResNet3dEncoder',
        backbone=dict(
            type='mmaction.ResNet3d',
            depth=50,
            pretrained=None,
            pretrained2d=False,
            conv1_kernel=(5, 7, 7),
            conv1_stride_t=2,
            pool1_stride_t=1,
            inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0)),
            zero_init_residual=False),
        frozen_stages=2),
    neck=dict(
        type='TemporalDeconNeck',
        in_channels=1024,
        out_channels=d_m,
        # the ConvLSTM branch (eq. 14-15) is Table 3's last row
        use_temporal=False,
        # hidden = input channels (the paper); set e.g. 256 for the cheaper
        # 1x1-projected ConvLSTM
        lstm_input_proj=None),
    text_encoder=dict(
        type='GRUSentenceEncoder',
        # GoogleNews word2vec rows for the A2D + J-HMDB vocabulary, made once
        # by tools/dataset_converters/extract_word_vectors.py
        word_vectors=dict(
            path='data/word_vectors/a2d_jhmdb_googlenews_300d.bin',
            format='word2vec_binary',
            dims=300),
        max_words=20,
        hidden_size=d_t // 2),
    head=dict(
        type='DyConvHead',
        in_channels=d_m,
        text_channels=d_t,
        # the baseline is a single dynamic filter; stacking comes with the
        # paper's own modules
        num_modules=1,
        # eq. 16: weighted BCE, lambda = 1.5 on the foreground
        loss_decode=dict(type='WeightedBCELoss', fg_weight=1.5,
                         loss_weight=1.0)),
    test_cfg=dict(mode='half_max', thr=0.5))
