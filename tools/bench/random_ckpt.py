"""random_ckpt.py writes a random-weight Hugging Face checkpoint of SmolLM2-135M's shape for speed comparisons.

Shape (issue #9): LlamaForCausalLM, hidden 576, intermediate 1536, 30 layers, 9 heads / 3 KV heads (head_dim 64),
vocab 50257 (the issue's figure; SmolLM2's own tokenizer has 49152), tied embeddings, bf16, rope_theta 100000,
max_position_embeddings 65536 so that `snapeval bench --model` can fill 32k-token caches.
The tokenizer is the shipped snaptiny one (2048 tokens; llama.cpp pads the vocabulary to vocab_size with unused
[PAD] tokens): throughput does not depend on which tokens exist, only on the vocabulary size.

  python3 tools/bench/random_ckpt.py OUTDIR [--vocab 50257] [--seed 0]
"""
import argparse
import json
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default="models/snaptiny/tokenizer.json")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=65536,
                      rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=0,
                      eos_token_id=0, hidden_act="silu")
    m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    os.makedirs(a.out, exist_ok=True)
    m.save_pretrained(a.out, safe_serialization=True)
    shutil.copy(a.tokenizer, os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                   "bos_token": "<|endoftext|>", "model_max_length": 65536}, f)
    print("random_ckpt:", a.out, sum(p.numel() for p in m.parameters()), "parameters")


if __name__ == "__main__":
    main()
