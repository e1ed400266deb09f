"""The token store: each data source tokenized once into a memory-mapped uint32 array.

Cached under $DEFINEMED_CACHE/tokens/<key>, where the key hashes the tokenizer files, the data
files and the source's selection settings: a second run (or another run on the same data and
tokenizer) memory-maps the result instead of tokenizing again. Documents are separated by one
separator token (SmolLM2's <|endoftext|> where the vocabulary has it, else EOS).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from definemed.data.heldout import DocIndex
from definemed.data.sources import load_docs
from definemed.errors import UserError
from definemed.models.bundled import cache_root
from definemed.runs import atomic_write_json, sha256_path
from definemed.train.config import DataSource


def separator_id(tokenizer) -> int:
    tid = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
        return tid
    if tokenizer.eos_token_id is None:
        raise UserError("the tokenizer has neither <|endoftext|> nor an EOS token to separate documents")
    return tokenizer.eos_token_id


def load_texts(src: DataSource) -> list[str]:
    return [d.text for d in load_docs(src)]


@dataclass
class TokenStore:
    tokens: np.ndarray  # uint32, documents each followed by the separator
    separator: int
    documents: int
    # ids and normalised-text keys of the documents: the held-out check reads it
    index: DocIndex = field(default_factory=DocIndex.empty)

    def __len__(self) -> int:
        return len(self.tokens)


def _key(src: DataSource, tokenizer_dir: Path) -> str:
    h = hashlib.sha256(b"store-v2")  # v2: the store holds its documents' DocIndex
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (tokenizer_dir / name).exists():
            h.update(sha256_path(tokenizer_dir / name).encode())
    h.update(sha256_path(src.path).encode())
    if src.gold_labels:
        h.update(sha256_path(src.gold_labels).encode())
    h.update(json.dumps(src.model_dump(mode="json", exclude={"weight", "kind"}), sort_keys=True).encode())
    return h.hexdigest()[:24]


def token_store(src: DataSource, tokenizer, tokenizer_dir: Path) -> TokenStore:
    folder = cache_root() / "tokens" / _key(src, Path(tokenizer_dir))
    if (folder / "meta.json").exists():
        meta = json.loads((folder / "meta.json").read_text())
        return TokenStore(np.memmap(folder / "tokens.bin", dtype=np.uint32, mode="r"), meta["separator"],
                          meta["documents"], DocIndex.load(folder / "docs.npz"))
    docs = load_docs(src, what="training data")
    texts = [d.text for d in docs]
    if not texts:
        raise UserError(f"no documents selected from {src.path}")
    sep = separator_id(tokenizer)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    flat = np.fromiter((t for doc in ids for t in (*doc, sep)), dtype=np.uint32)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tokens-"))
    try:
        flat.tofile(tmp / "tokens.bin")
        DocIndex.build(docs).save(tmp / "docs.npz")
        atomic_write_json(tmp / "meta.json", {"separator": sep, "documents": len(texts), "tokens": int(len(flat)),
                                              "source": src.model_dump(mode="json")})
        try:
            tmp.rename(folder)
        except OSError:  # another process built it meanwhile
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return token_store(src, tokenizer, tokenizer_dir)
