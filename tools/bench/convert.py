"""convert.py runs llama.cpp's convert_hf_to_gguf.py on a checkpoint whose tokenizer llama.cpp does not know.

convert_hf_to_gguf.py identifies a BPE tokenizer's pre-tokenizer by hashing the ids it gives for a fixed text and
refuses unknown hashes. The random benchmark checkpoint carries snapeval's own small tokenizer (GPT-2 regex
pre-tokenizer with individual digits), so this wrapper names the pre-tokenizer "gpt-2" and otherwise runs the
converter unchanged: weights, shapes and metadata are converted exactly as for any Llama checkpoint.

  python3 tools/bench/convert.py LLAMA_CPP_DIR CKPT_DIR --outtype bf16 --outfile model-bf16.gguf
"""
import sys


def main():
    root = sys.argv[1]
    sys.path.insert(0, root + "/gguf-py")
    sys.path.insert(0, root)
    import convert_hf_to_gguf as conv

    conv.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
    sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
    conv.main()


if __name__ == "__main__":
    main()
