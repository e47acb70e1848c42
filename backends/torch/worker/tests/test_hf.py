"""Which architectures the worker refuses before loading them."""
from __future__ import annotations

import unittest
from types import SimpleNamespace

from snapworker.hf import Refused, check_architecture


def cfg(model_type: str, **kw: object) -> SimpleNamespace:
    return SimpleNamespace(model_type=model_type, architectures=[model_type.title() + "ForCausalLM"],
                           max_position_embeddings=32768, **kw)


class ArchitectureTest(unittest.TestCase):
    def test_standard_attention_is_accepted(self) -> None:
        for c in [cfg("llama"), cfg("qwen2", sliding_window=4096, use_sliding_window=False,
                                    layer_types=["full_attention"] * 4),
                  cfg("mistral", sliding_window=None), cfg("qwen3", sliding_window=None), cfg("gemma")]:
            check_architecture(c)

    def test_refusals_name_the_architecture(self) -> None:
        cases = [(cfg("deepseek_v3"), "MLA"), (cfg("custom", kv_lora_rank=512), "MLA"),
                 (cfg("gemma2"), "sliding-window"), (cfg("mistral", sliding_window=4096), "sliding-window"),
                 (cfg("qwen2", layer_types=["full_attention", "sliding_attention"]), "sliding_attention"),
                 (cfg("llama4_text"), "chunked"), (cfg("mamba"), "state-space"),
                 (cfg("custom", attn_logit_softcapping=50.0), "softcapping")]
        for c, want in cases:
            with self.assertRaises(Refused) as cm:
                check_architecture(c)
            self.assertIn(want, str(cm.exception))
            self.assertIn(c.architectures[0], str(cm.exception))


if __name__ == "__main__":
    unittest.main()
