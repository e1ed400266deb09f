"""MCQ tokenization follows lm-eval's HFLM exactly (``tok_encode`` / ``_encode_pair``): a tokenizer
that adds BOS gets it once before a plain prompt, and a chat-template prompt that already starts
with the BOS text gets no second one."""

import pytest

from conftest import ROOT
from definemed.eval import mcq_data
from definemed.eval.config import MCQEvalConfig
from definemed.eval.loglik import encode_pair
from definemed.eval.mcq import contexts_for

SAMPLE = ROOT / "data/sample/mcq_de/mcq_de.jsonl"


@pytest.fixture(scope="module", params=["tiny_llama", "tiny_bos_model"])
def hflm(request):
    """lm-eval's own HF model wrapper on a tiny local model (SmolLM2 tokenizer: no BOS; BOS family)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(request.getfixturevalue(request.param)), device="cpu", dtype="float32", batch_size=1)


@pytest.mark.parametrize("chat_template", [False, True])
def test_encode_pair_as_lm_eval(hflm, chat_template, tmp_path):
    tok = hflm.tokenizer
    cfg = MCQEvalConfig(data=SAMPLE, output_dir=tmp_path, chat_template=chat_template, shots=1)
    items = mcq_data.load_items(SAMPLE)
    for item, ctx in zip(items[:4], contexts_for(cfg, items[:4], items, tok)):
        for target in mcq_data.targets(item, cfg.target):
            cont = mcq_data.TARGET_DELIMITER + target
            assert encode_pair(tok, ctx, cont) == hflm._encode_pair(ctx, cont)
        ids = encode_pair(tok, ctx, " x")[0]
        if tok.bos_token_id is not None and getattr(tok, "add_bos_token", False):
            assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id  # exactly one BOS, never doubled
