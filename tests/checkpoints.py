"""Tiny random-weight ColBERT checkpoints in the file layouts PyLate 1.6 reads from the hub.

Each builder writes a folder shaped like one published checkpoint, small enough for CI
(2 layers, hidden size 32, a vocabulary of a few hundred tokens trained here with the
``tokenizers`` library; nothing is downloaded):

- :func:`bert_colbert`, like ``answerdotai/answerai-colbert-small-v1``: BERT, WordPiece
  with token types, a 96-d projection, ``[unused0]`` / ``[unused1]`` markers from the
  vocabulary, 32 query and 300 document tokens;
- :func:`modernbert_colbert`, like ``lightonai/GTE-ModernColBERT-v1``: ModernBERT (no
  token types, local attention), byte-level BPE, 128-d, ``[Q] `` / ``[D] `` as added
  tokens, 32 / 300;
- :func:`custom_code_colbert`, like ``jinaai/jina-colbert-v2``: an XLM-RoBERTa whose model
  code ships in the folder (``auto_map``: loads only with ``trust_remote_code``; the code
  is the stand-in in ``tests/remote_code``), Unigram, 128-d, ``[QueryMarker]`` /
  ``[DocumentMarker]``, queries attending to their ``[MASK]`` expansion, 32 / 8192.

The layout is a sentence-transformers model (``modules.json``: the transformer at the
root, PyLate's ``Dense`` projection in ``1_Dense/``) plus ``config_sentence_transformers.json``
holding what PyLate reads from it: ``query_prefix``, ``document_prefix``, ``query_length``,
``document_length``, ``attend_to_expansion_tokens``, ``skiplist_words``.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path
from typing import Any

import torch

from .conftest import CORPUS

# what the tokenizers are trained on: the test corpus, and queries' words
TRAINING_TEXT = [text for _, text, _ in CORPUS] + [
    "What is the capital of Germany? Which city is the largest in France?",
    "How do cells make energy; why does bread rise, and what is late interaction?",
    "word short because well it is a the of and to in for with by on from",
]
HIDDEN = 32
TINY = {
    "hidden_size": HIDDEN,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
BERT_STYLE = {  # BERT's special tokens, which ModernBERT keeps
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
}
REMOTE_CODE = Path(__file__).with_name("remote_code")


def _trained(model: Any, trainer: Any, pre_tokenizer: Any, normalizer: Any = None) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizer
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer)
    return tokenizer


def _template(tokenizer: Any, first: str, last: str, *, pair_types: bool) -> None:
    from tokenizers.processors import TemplateProcessing

    second = f"$B:1 {last}:1" if pair_types else f"$B {last}"
    tokenizer.post_processor = TemplateProcessing(
        single=f"{first} $A {last}",
        pair=f"{first} $A {last} {second}",
        special_tokens=[(t, tokenizer.token_to_id(t)) for t in (first, last)],
    )


def _fast(tokenizer: Any, input_names: list[str], **special: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_input_names=input_names, **special
    )


def _save_colbert(
    root: Path,
    auto_model: Any,
    tokenizer: Any,
    *,
    dim: int,
    settings: dict[str, Any],
    max_seq_length: int,
    seed: int,
) -> Path:
    """The transformer at the root, PyLate's Dense in 1_Dense, PyLate's settings beside."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    auto_model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ]
    (root / "modules.json").write_text(json.dumps(modules, indent=2))
    (root / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
    )
    dense = root / "1_Dense"
    dense.mkdir(exist_ok=True)
    (dense / "config.json").write_text(
        json.dumps(
            {
                "in_features": HIDDEN,
                "out_features": dim,
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        )
    )
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(dim, HIDDEN, generator=generator) / HIDDEN**0.5
    save_file({"linear.weight": weight.contiguous()}, str(dense / "model.safetensors"))
    st_config = {
        "prompts": {},
        "default_prompt_name": None,
        "similarity_fn_name": "MaxSim",
        "skiplist_words": list(string.punctuation),
        **settings,
    }
    (root / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2))
    return root


def bert_colbert(root: Path, *, seed: int = 11) -> Path:
    """A BERT ColBERT shaped like ``answerdotai/answerai-colbert-small-v1`` (96-d tokens)."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel

    specials = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = _trained(
        models.WordPiece(unk_token="[UNK]"),
        trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials),
        pre_tokenizers.BertPreTokenizer(),
        normalizers.BertNormalizer(lowercase=True),
    )
    _template(tokenizer, "[CLS]", "[SEP]", pair_types=True)
    tokenizer.decoder = decoders.WordPiece()
    fast = _fast(
        tokenizer,
        ["input_ids", "token_type_ids", "attention_mask"],
        **BERT_STYLE,
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(fast),
        **TINY,
        max_position_embeddings=512,
        pad_token_id=0,
    )
    settings = {
        "query_prefix": "[unused0]",
        "document_prefix": "[unused1]",
        "query_length": 32,
        "document_length": 300,
        "attend_to_expansion_tokens": False,
    }
    return _save_colbert(
        root, BertModel(config), fast, dim=96, settings=settings, max_seq_length=299, seed=seed
    )


def modernbert_colbert(root: Path, *, seed: int = 12) -> Path:
    """A ModernBERT ColBERT shaped like ``lightonai/GTE-ModernColBERT-v1`` (128-d tokens)."""
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers
    from transformers import ModernBertConfig, ModernBertModel

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tokenizer = _trained(
        models.BPE(unk_token="[UNK]"),
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    )
    tokenizer.decoder = decoders.ByteLevel()
    _template(tokenizer, "[CLS]", "[SEP]", pair_types=False)
    # the markers are vocabulary entries of their own, trailing space included
    tokenizer.add_tokens(
        [AddedToken("[Q] ", normalized=False), AddedToken("[D] ", normalized=False)]
    )
    fast = _fast(
        tokenizer,
        ["input_ids", "attention_mask"],
        **BERT_STYLE,
    )
    ids = {t: fast.convert_tokens_to_ids(t) for t in specials}
    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=len(fast),
        **TINY,
        max_position_embeddings=512,
        local_attention=64,
        pad_token_id=ids["[PAD]"],
        bos_token_id=ids["[CLS]"],
        cls_token_id=ids["[CLS]"],
        eos_token_id=ids["[SEP]"],
        sep_token_id=ids["[SEP]"],
    )
    settings = {
        "query_prefix": "[Q] ",
        "document_prefix": "[D] ",
        "query_length": 32,
        "document_length": 300,
        "attend_to_expansion_tokens": False,
        "do_query_expansion": True,
    }
    return _save_colbert(
        root,
        ModernBertModel(config),
        fast,
        dim=128,
        settings=settings,
        max_seq_length=299,
        seed=seed,
    )


def custom_code_colbert(root: Path, *, seed: int = 13) -> Path:
    """An XLM-RoBERTa ColBERT with its own model code, laid out as ``jinaai/jina-colbert-v2``.

    That checkpoint is in the Stanford ColBERT layout, which PyLate also reads: no
    ``modules.json``; ``config.json`` names the ``HF_ColBERT`` architecture and the model
    code (``auto_map``, keeping the library's ``model_type``, so that without
    ``trust_remote_code`` transformers would build its own XLM-RoBERTa and leave the weights
    unused); ``model.safetensors`` holds the encoder and the projection (``linear.weight``);
    ``artifact.metadata`` holds Stanford ColBERT's settings, whose markers are its defaults
    (``[unused0]`` / ``[unused1]``), not the ``[QueryMarker]`` / ``[DocumentMarker]`` the
    model was trained with: those, and attending to the query's ``[MASK]`` expansion, are
    not in the files and are set when loading (as PyLate's documentation does for it).
    """
    from safetensors.torch import load_file, save_file
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer = _trained(
        models.Unigram(),
        trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>"),
        pre_tokenizers.Metaspace(),
    )
    tokenizer.decoder = decoders.Metaspace()
    _template(tokenizer, "<s>", "</s>", pair_types=False)
    tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tokenizer.add_tokens(["[QueryMarker]", "[DocumentMarker]"])
    fast = _fast(
        tokenizer,
        ["input_ids", "attention_mask"],
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    _remote_code_model(root, len(fast), seed).save_pretrained(root)
    fast.save_pretrained(root)
    config = json.loads((root / "config.json").read_text())
    assert "auto_map" in config
    (root / "config.json").write_text(json.dumps({**config, "architectures": ["HF_ColBERT"]}))
    weights = load_file(root / "model.safetensors")
    generator = torch.Generator().manual_seed(seed)
    weights["linear.weight"] = torch.randn(128, HIDDEN, generator=generator) / HIDDEN**0.5
    save_file(weights, str(root / "model.safetensors"), metadata={"format": "pt"})
    metadata = {
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
        "query_maxlen": 32,
        "doc_maxlen": 8192,
        "attend_to_mask_tokens": False,
        "dim": 128,
        "similarity": "cosine",
    }
    (root / "artifact.metadata").write_text(json.dumps(metadata, indent=2))
    return root


def _remote_code_model(root: Path, vocab_size: int, seed: int) -> Any:
    """The stand-in model, built from its code in ``root`` as transformers loads such code."""
    from transformers import AutoConfig, AutoModel

    root.mkdir(parents=True, exist_ok=True)
    for source in REMOTE_CODE.glob("*.py"):
        shutil.copy(source, root / source.name)
    config = {
        "model_type": "xlm-roberta",
        "architectures": ["XLMRobertaModel"],
        "auto_map": {
            "AutoConfig": "configuration_tiny_xlmr.XLMRobertaFlashConfig",
            "AutoModel": "modeling_tiny_xlmr.XLMRobertaModel",
        },
        "vocab_size": vocab_size,
        **TINY,
    }
    (root / "config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    loaded = AutoConfig.from_pretrained(str(root), trust_remote_code=True)
    return AutoModel.from_config(loaded, trust_remote_code=True)
