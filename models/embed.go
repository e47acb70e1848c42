// Package models embeds the model checkpoints that snapeval ships, so that `snapeval run` works with no
// download and no flags.
package models

import (
	"embed"
	"io/fs"
)

// Name is the name of the shipped checkpoint.
const Name = "snaptiny"

//go:embed snaptiny/config.json snaptiny/generation_config.json snaptiny/model.safetensors snaptiny/tokenizer.json
var files embed.FS

// SnapTiny is the shipped checkpoint, rooted at its folder: config.json (LlamaForCausalLM), model.safetensors
// (bf16, tied embeddings), tokenizer.json (byte-level BPE, EOS "<|endoftext|>" = 0) and generation_config.json.
// It is trained by tools/train/train.py on the train split of the "synth" suite (package eval/synthetic);
// tools/train/README.md records how, and what it scores. Open it with the cpu backend's OpenFS(SnapTiny, ".", Name, ...).
var SnapTiny fs.FS = mustSub(files, Name)

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // unreachable: dir is a literal embedded above
	}
	return sub
}
