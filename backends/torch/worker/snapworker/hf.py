"""Loading a checkpoint with Hugging Face transformers and running it with the snapeval attention function.

Only decoder-only models whose every layer runs standard (full, causal, softmax) attention over per-KV-head keys and
values can keep a SnapStream cache: multi-head latent attention (DeepSeek-V2/V3, Kimi), sliding-window or chunked
layers (Mistral with a window, Gemma 2/3, Cohere 2, Llama 4, GPT-OSS) and linear or recurrent layers are refused before
anything is loaded, naming the architecture.
"""
from __future__ import annotations

import contextlib

from typing import Any, Dict, Optional

import torch

from .attention import attention

ATTN_NAME = "snapeval"

# Architectures whose attention is not per-KV-head softmax attention, whatever their config says.
_REFUSED_TYPES = {
    "deepseek_v2": "multi-head latent attention (MLA)",
    "deepseek_v3": "multi-head latent attention (MLA)",
    "kimi_k2": "multi-head latent attention (MLA)",
    "minicpm3": "multi-head latent attention (MLA)",
    "gemma2": "alternating sliding-window layers",
    "gemma3": "alternating sliding-window layers",
    "gemma3_text": "alternating sliding-window layers",
    "cohere2": "alternating sliding-window layers",
    "llama4": "chunked attention layers",
    "llama4_text": "chunked attention layers",
    "gpt_oss": "alternating sliding-window layers and attention sinks",
    "mamba": "no attention (state-space layers)",
    "mamba2": "no attention (state-space layers)",
    "jamba": "hybrid state-space layers",
    "zamba": "hybrid state-space layers",
    "qwen3_next": "hybrid linear-attention layers",
    "falcon_h1": "hybrid state-space layers",
}


class Refused(Exception):
    """The model cannot be compressed by this backend (a setup error)."""


def check_architecture(config: Any) -> None:
    """Raises Refused, naming the architecture, when a layer's attention cannot hold a SnapStream cache."""
    mt = getattr(config, "model_type", "?")
    arch = ",".join(getattr(config, "architectures", None) or [mt])
    if mt in _REFUSED_TYPES:
        raise Refused(f"{arch} (model_type {mt}) uses {_REFUSED_TYPES[mt]}, which the torch backend cannot compress")
    if getattr(config, "kv_lora_rank", None) or getattr(config, "q_lora_rank", None):
        raise Refused(f"{arch} (model_type {mt}) uses multi-head latent attention (MLA), which the torch backend "
                      "cannot compress")
    if getattr(config, "is_encoder_decoder", False):
        raise Refused(f"{arch} (model_type {mt}) is an encoder-decoder model; the torch backend runs decoder-only "
                      "models")
    kinds = set(getattr(config, "layer_types", None) or [])
    if kinds - {"full_attention"}:
        raise Refused(f"{arch} (model_type {mt}) has {sorted(kinds - {'full_attention'})} layers; the torch backend "
                      "compresses only full-attention layers")
    window = getattr(config, "sliding_window", None)
    use_window = getattr(config, "use_sliding_window", True)
    if window and use_window and window < getattr(config, "max_position_embeddings", 0):
        raise Refused(f"{arch} (model_type {mt}) uses sliding-window attention (window {window}); the torch backend "
                      "compresses only full attention")
    for key in ("attn_logit_softcapping", "attention_chunk_size"):
        if getattr(config, key, None):
            raise Refused(f"{arch} (model_type {mt}) sets {key}; the torch backend runs standard softmax attention only")


# Model types whose transformers attention applies RoPE with rotate_half over the two halves of the head (the
# layout rerotate's rotation assumes); others (interleaved pairs as in GLM or Cohere, or unknown ones) are refused.
ROTATE_HALF_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
                               "granite", "olmo", "olmo2", "phi3", "starcoder2", "internlm2", "yi", "deepseek"})
# RoPE types whose angles are position * fixed inverse frequencies with no attention scaling.
PLAIN_ROPE_TYPES = frozenset({"default", "linear", "llama3"})


def rope_facts(config: Any, model: Any, head_dim: int) -> "tuple[Optional[torch.Tensor], str]":
    """The model's RoPE as rerotate needs it: (inverse frequencies float32 [head_dim / 2], "rotate_half") when it is
    plain rotate_half RoPE over the whole head with fixed frequencies and no attention scaling; otherwise (None, what
    it is instead), which the worker names when it refuses rerotate."""
    tc = getattr(config, "get_text_config", lambda: config)()
    mt = getattr(tc, "model_type", "?")
    if mt not in ROTATE_HALF_TYPES:
        return None, f"model_type {mt}, which is not known to apply rotate_half RoPE"
    rp = getattr(tc, "rope_scaling", None) or getattr(tc, "rope_parameters", None) or {}
    partial = getattr(tc, "partial_rotary_factor", None) or rp.get("partial_rotary_factor")
    if partial not in (None, 1, 1.0):
        return None, f"partial rotary RoPE (partial_rotary_factor {partial})"
    kind = rp.get("rope_type", rp.get("type", "default"))
    if kind not in PLAIN_ROPE_TYPES:
        return None, f"{kind} RoPE scaling"
    rot = None
    for m in model.modules():
        if hasattr(m, "inv_freq") and type(m).__name__.endswith("RotaryEmbedding"):
            rot = m
            break
    if rot is None:
        return None, "no rotary embedding module with inv_freq"
    scaling = float(getattr(rot, "attention_scaling", 1.0))
    if scaling != 1.0:
        return None, f"RoPE with attention_scaling {scaling}"
    inv = rot.inv_freq.detach().float().cpu()
    if tuple(inv.shape) != (head_dim // 2,):
        return None, f"partial rotary RoPE ({inv.numel()} frequencies for head_dim {head_dim})"
    return inv, "rotate_half"


def note_pre_rope_keys(model: Any, head_dim: int) -> bool:
    """Hooks every decoder layer's key projection (and its key norm, where the model has one, as qwen3 does) so that
    the keys before RoPE reach attention.note_pre_rope (which keeps them only while a step's prefill asks: knorm,
    docs/policies.md §15). True when every layer of model.model.layers got a hook on a k_proj."""
    from .attention import note_pre_rope

    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        return False
    hooked = 0
    for i, layer in enumerate(layers):
        attn = getattr(layer, "self_attn", None)
        if attn is None or getattr(attn, "k_proj", None) is None:
            continue
        idx = int(getattr(attn, "layer_idx", i))

        def hook(_m: Any, _inp: Any, out: torch.Tensor, _l: int = idx) -> None:
            note_pre_rope(_l, out, head_dim)

        attn.k_proj.register_forward_hook(hook)
        if getattr(attn, "k_norm", None) is not None:  # the key norm's output (after k_proj's) is what RoPE rotates
            attn.k_norm.register_forward_hook(hook)
        hooked += 1
    return hooked == len(layers)


def register() -> None:
    """Registers the attention function. No mask function is registered on purpose: for an attention
    implementation that transformers' AttentionMaskInterface does not know, create_causal_mask returns None at
    once (transformers >= 4.53), so no T x T mask is ever built; a registered one (even a no-op) would first run
    find_packed_sequence_indices, whose `.all()` synchronises with the device on every forward and makes a CUDA
    graph capture of the decode step fail."""
    import transformers

    transformers.AttentionInterface.register(ATTN_NAME, attention)


def chunk_mlps(model: Any, chunk: int) -> Dict[str, int]:
    """Makes every MLP module (class name ending in "MLP": per-token feed-forward blocks) run rows of more than
    ctl["chunk"] tokens in slices of that many, so that a 128k-token prefill holds one slice's intermediate
    activations (3 x chunk x intermediate_size) instead of the whole prompt's. Shorter rows run unchanged (same
    kernels, same bits), and ctl["chunk"] = 0 turns it off (transformers' own forward in the bench). Returns ctl:
    chunk, default (the chunk asked for) and modules (how many were wrapped)."""
    ctl = {"chunk": chunk, "default": chunk, "modules": 0}
    for m in model.modules():
        if not type(m).__name__.endswith("MLP"):
            continue
        inner = m.forward

        def forward(x: torch.Tensor, _inner: Any = inner) -> torch.Tensor:
            c = ctl["chunk"]
            if c > 0 and x.dim() == 3 and x.shape[1] > c:
                return torch.cat([_inner(part) for part in x.split(c, dim=1)], dim=1)
            return _inner(x)

        m.forward = forward
        ctl["modules"] += 1
    return ctl


def _dtype_kw(transformers_version: str) -> str:
    major, minor = (int(x) for x in transformers_version.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


class HFRunner:
    """A transformers causal LM run over packed rows with explicit positions and no cache of its own."""

    def __init__(self, model_dir: str, device: str, dtype: torch.dtype, random_weights: bool, seed: int = 0,
                 mlp_chunk: int = 32768) -> None:
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM

        register()
        config = AutoConfig.from_pretrained(model_dir)
        check_architecture(config)
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        kw: Dict[str, Any] = {_dtype_kw(transformers.__version__): dtype, "attn_implementation": ATTN_NAME}
        if random_weights:
            torch.manual_seed(seed)
            # The weights are made on the device, not copied there (a CPU needs no context; torch < 2.0 has none).
            with self.device if self.device.type != "cpu" else contextlib.nullcontext():
                model = AutoModelForCausalLM.from_config(config, **kw)
        else:
            model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
        model = model.to(self.device)
        if random_weights:  # the values the tensor-parallel build draws, so that tp=1 and tp=N are one model
            from .shard import redraw_by_name

            tc0 = getattr(config, "get_text_config", lambda: config)()
            redraw_by_name(model, seed, float(getattr(tc0, "initializer_range", 0.02) or 0.02))
        self.model = model.eval()
        tc = getattr(config, "get_text_config", lambda: config)()
        self.layers = int(tc.num_hidden_layers)
        self.q_heads = int(tc.num_attention_heads)
        self.kv_heads = int(getattr(tc, "num_key_value_heads", None) or self.q_heads)
        self.head_dim = int(getattr(tc, "head_dim", None) or tc.hidden_size // self.q_heads)
        self.vocab = int(tc.vocab_size)
        self.max_positions = int(getattr(tc, "max_position_embeddings", 0) or 0)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        # A decode step reads every weight but the input embedding (one row of it), unless it is tied to the head.
        emb = self.model.get_input_embeddings().weight
        out = self.model.get_output_embeddings()
        tied = out is not None and out.weight.data_ptr() == emb.data_ptr()
        self.weight_bytes_read = self.weight_bytes - (0 if tied else emb.numel() * emb.element_size())
        self.mlp_ctl = chunk_mlps(self.model, mlp_chunk)
        # rerotate's view of the RoPE: rope_inv_freq (None unless plain) and rope_style ("rotate_half", or what it is).
        self.rope_inv_freq, self.rope_style = rope_facts(config, self.model, self.head_dim)
        # knorm ranks the keys before RoPE: hooks on the key projections note them (pre_rope: every layer hooked).
        self.pre_rope = note_pre_rope_keys(self.model, self.head_dim)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.model(input_ids=ids[None], position_ids=positions[None], use_cache=False, logits_to_keep=last)
        logits = out.logits[0]
        if logits.shape[0] != last.shape[0]:
            raise RuntimeError(f"model returned {logits.shape[0]} logits rows, asked for {last.shape[0]}")
        return logits

    def info(self) -> Dict[str, Any]:
        """What the manifest records about the model as loaded."""
        tc = self.config
        return {"architecture": ",".join(getattr(tc, "architectures", None) or []),
                "model_type": getattr(tc, "model_type", ""), "layers": self.layers, "q_heads": self.q_heads,
                "kv_heads": self.kv_heads, "head_dim": self.head_dim, "vocab": self.vocab,
                "max_positions": self.max_positions, "params": self.params, "weight_bytes": self.weight_bytes,
                "weight_bytes_read": self.weight_bytes_read}


def device_info(device: str) -> Dict[str, Any]:
    """The device's name and memory (free after the model is loaded)."""
    d = torch.device(device)
    if d.type != "cuda":
        return {"gpu": "", "device_memory_bytes": 0, "free_bytes": 0}
    free, total = torch.cuda.mem_get_info(d)
    return {"gpu": torch.cuda.get_device_name(d), "device_memory_bytes": int(total), "free_bytes": int(free)}
