"""The merge sweep's eval cache keys on the model's contents, not on its path or label."""

from definemed.merge import sweep_eval
from definemed.merge.config import MergeEvalConfig


def test_re_merged_model_at_the_same_path_is_evaluated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFINEMED_CACHE", str(tmp_path / "cache"))
    evaluated = []
    monkeypatch.setattr(sweep_eval, "evaluate",
                        lambda model, tok, settings, data: evaluated.append(model) or {"x": model})
    folder = tmp_path / "t0.5"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"merge one")
    settings, cache = MergeEvalConfig(enabled=False), tmp_path / "eval" / "t0.5.json"
    data = sweep_eval.EvalData(["Ein gehaltener Text."], [], 0)

    def run(tag, data=data):
        return sweep_eval.cached_or_evaluate(cache, settings, str(folder), lambda: (tag, None), data)

    assert run("first") == {"x": "first"} and run("again") == {"x": "first"}  # unchanged: cached
    assert evaluated == ["first"]
    (folder / "model.safetensors").write_bytes(b"merge two")  # re-merged into the same folder
    assert run("second") == {"x": "second"} and evaluated == ["first", "second"]
    assert run("third") == {"x": "second"}
    changed = settings.model_copy(update={"max_new_tokens": settings.max_new_tokens + 1})
    assert sweep_eval.cached_or_evaluate(cache, changed, str(folder), lambda: ("fourth", None), data) == {"x": "fourth"}
    # other held-out data (e.g. after a training-overlap exclusion) is scored anew
    assert run("fifth", sweep_eval.EvalData(["Ein anderer Text."], [], 1)) == {"x": "fifth"}
