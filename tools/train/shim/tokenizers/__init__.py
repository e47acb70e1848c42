"""CPU smoke-test shim for HF tokenizers: encodes with `bin/snapeval tokenize` (the Go tokenizer)."""
import json, subprocess
from concurrent.futures import ThreadPoolExecutor

class _Enc:
    def __init__(self, ids, inv):
        self.ids = ids
        self.tokens = [inv[i] for i in ids]

class Tokenizer:
    def __init__(self, path):
        self.path = path
        t = json.load(open(path))
        self.vocab = dict(t["model"]["vocab"])
        for a in t.get("added_tokens", []):
            self.vocab[a["content"]] = a["id"]
        self.inv = {i: k for k, i in self.vocab.items()}
        self.cache = {}

    @classmethod
    def from_file(cls, path):
        return cls(path)

    def _one(self, text):
        if text not in self.cache:
            out = subprocess.run(["bin/snapeval", "tokenize", "--tokenizer", self.path], input=text,
                                 capture_output=True, text=True, check=True)
            self.cache[text] = json.loads(out.stdout)["ids"]
        return self.cache[text]

    def encode(self, text, add_special_tokens=False):
        return _Enc(self._one(text), self.inv)

    def encode_batch(self, texts, add_special_tokens=False):
        with ThreadPoolExecutor(4) as ex:
            ids = list(ex.map(self._one, texts))
        return [_Enc(i, self.inv) for i in ids]

    def decode(self, ids, skip_special_tokens=False):
        args = ["bin/snapeval", "tokenize", "--tokenizer", self.path, "--decode"]
        if skip_special_tokens:
            args.append("--skip-special")
        out = subprocess.run(args, input=json.dumps([int(i) for i in ids]), capture_output=True, text=True, check=True)
        return json.loads(out.stdout)["text"]

    def get_vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return dict(self.vocab)

    def id_to_token(self, i):
        return self.inv[i]

    def token_to_id(self, t):
        return self.vocab.get(t)

    def save(self, path):
        import shutil
        shutil.copy(self.path, path)
