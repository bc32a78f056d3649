"""Configuration of a tiny stand-in for Jina's XLM-RoBERTa "flash" implementation.

A checkpoint folder ships this file beside its weights and names it in ``config.json``'s
``auto_map`` (as ``jinaai/jina-colbert-v2`` names ``jinaai/xlm-roberta-flash-implementation``):
transformers runs it only with ``trust_remote_code=True``.
"""

from transformers import PretrainedConfig


class XLMRobertaFlashConfig(PretrainedConfig):
    """An XLM-RoBERTa encoder with rotary positions instead of learned ones."""

    model_type = "xlm-roberta"

    def __init__(
        self,
        vocab_size: int = 250002,
        hidden_size: int = 1024,
        num_hidden_layers: int = 24,
        num_attention_heads: int = 16,
        intermediate_size: int = 4096,
        layer_norm_eps: float = 1e-5,
        rotary_emb_base: float = 20000.0,
        position_embedding_type: str = "rotary",
        use_flash_attn: bool = True,
        unpad_inputs: bool = False,
        pad_token_id: int = 1,
        bos_token_id: int = 0,
        eos_token_id: int = 2,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.layer_norm_eps = layer_norm_eps
        self.rotary_emb_base = rotary_emb_base
        self.position_embedding_type = position_embedding_type
        self.use_flash_attn = use_flash_attn
        self.unpad_inputs = unpad_inputs
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            **kwargs,
        )
