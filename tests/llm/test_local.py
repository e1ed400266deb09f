"""The local transformers backend on tiny random models (bundled tokenizer, 2 layers).

Both architectures matter for the batching test: Llama's rotary positions are relative, so a
constant shift of positions by left padding cancels out; GPT-2's learned absolute position
embeddings do not, and they expose a batch that is padded without matching position ids."""

import pytest

from definemed.llm.base import BackendConfig, Failed


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny_backend(request, bundled_model_path):
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from definemed.llm.local import LocalBackend

    tok = AutoTokenizer.from_pretrained(bundled_model_path)
    torch.manual_seed(0)
    if request.param == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=512))
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=4, n_positions=512,
                                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    return LocalBackend(BackendConfig(batch_size=8), model=model.eval(), tokenizer=tok)


# Prompts of very different lengths, so that the short ones get many pad tokens in a batch.
CHATS = [[{"role": "user", "content": text}] for text in (
    "Kurz.",
    "Bewerte dieses Dokument: Ein Patient mit Fieber bekam 500 mg Paracetamol, die Symptome gingen zurück, "
    "und der Arzt empfahl Bettruhe sowie viel Flüssigkeit für die nächsten drei Tage.",
    "Mittellange Frage zur Dosis?",
)]


@pytest.mark.parametrize("options", [["0", "1", "2", "3", "4", "5"], [" Antwort A", " Antwort B"]])
def test_batched_scores_equal_one_by_one(tiny_backend, options):
    """A prompt's scores must not depend on what else is in its batch (left padding needs position ids)."""
    batched = tiny_backend.score_options(CHATS, options, prefix="Urteil:")
    alone = [tiny_backend.score_options([c], options, prefix="Urteil:")[0] for c in CHATS]
    for b, a in zip(batched, alone):
        assert not isinstance(b, Failed) and not isinstance(a, Failed)
        assert b == pytest.approx(a, abs=1e-4)


def test_scores_are_log_probabilities_from_the_model(tiny_backend):
    (scores,) = tiny_backend.score_options(CHATS[:1], ["0", "1", "2", "3", "4", "5"])
    assert all(s < 0 for s in scores) and len(set(scores)) > 1  # real, distinct log-probs, not a default
