"""A tiny stand-in for Jina's XLM-RoBERTa "flash" model code (rotary attention, plain PyTorch).

Shipped inside a test checkpoint folder and loaded by transformers only with
``trust_remote_code=True``. Flash attention is not used here: like Jina's code without the
``flash_attn`` package, attention runs in PyTorch's scaled dot-product attention.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .configuration_tiny_xlmr import XLMRobertaFlashConfig


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def _rotary(q: torch.Tensor, k: torch.Tensor, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position embeddings over the last two axes (length, head dimension)."""
    head_dim = q.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    positions = torch.arange(q.shape[-2], dtype=torch.float32, device=q.device)
    freqs = torch.outer(positions, inv_freq.to(q.device))
    angles = torch.cat((freqs, freqs), dim=-1)
    cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


class Block(nn.Module):
    """Post-norm self-attention and MLP, as in XLM-RoBERTa, with a fused QKV projection."""

    def __init__(self, config: XLMRobertaFlashConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.heads = config.num_attention_heads
        self.base = config.rotary_emb_base
        self.Wqkv = nn.Linear(hidden, 3 * hidden)
        self.out_proj = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(hidden, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rows, length, hidden = x.shape
        qkv = self.Wqkv(x).view(rows, length, 3, self.heads, hidden // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = _rotary(q, k, self.base)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.norm1(x + self.out_proj(attended.transpose(1, 2).reshape(rows, length, hidden)))
        return self.norm2(x + self.fc2(nn.functional.gelu(self.fc1(x))))


class XLMRobertaModel(PreTrainedModel):
    """The encoder: token embeddings, rotary attention blocks, last hidden state out."""

    config_class = XLMRobertaFlashConfig
    base_model_prefix = "roberta"

    def __init__(self, config: XLMRobertaFlashConfig) -> None:
        super().__init__(config)
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.emb_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.config.unpad_inputs:
            return BaseModelOutput(last_hidden_state=self._unpadded(input_ids, attention_mask))
        return BaseModelOutput(last_hidden_state=self._encode(input_ids, attention_mask))

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask[:, None, None, :].bool()
        x = self.emb_ln(self.word_embeddings(input_ids))
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def _unpadded(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Each row at its own length, as flash attention's variable-length kernels run.

        The lengths are read back as Python numbers (flash-attn's ``unpad_input`` does the
        same with ``.item()``): code that a tracing exporter cannot follow.
        """
        shape = (*input_ids.shape, self.config.hidden_size)
        out = torch.zeros(shape, dtype=self.dtype, device=input_ids.device)
        for row, length in enumerate(attention_mask.sum(dim=1).tolist()):
            ones = attention_mask[row : row + 1, :length]
            out[row, :length] = self._encode(input_ids[row : row + 1, :length], ones)[0]
        return out
