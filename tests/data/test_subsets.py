"""Eval subsets are stratified: a file sorted by subject does not give its first subjects only."""

from collections import Counter

from definemed.data.subsets import allocate, stratified_subset


def test_sorted_file_gives_every_subject_in_proportion():
    items = [("a", i) for i in range(50)] + [("b", i) for i in range(30)] + [("c", i) for i in range(20)]
    sub = stratified_subset(items, 10, key=lambda x: x[0], seed=0)
    assert Counter(s for s, _ in sub) == {"a": 5, "b": 3, "c": 2}  # the first 10 lines: all "a"
    assert sub == sorted(sub, key=items.index)  # the file's order is kept


def test_small_strata_are_represented_and_sizes_respected():
    assert allocate({"a": 90, "b": 5, "c": 5}, 10) == {"a": 8, "b": 1, "c": 1}
    assert allocate({"a": 1, "b": 100}, 50) == {"a": 1, "b": 49}
    assert sum(allocate({"x": 7, "y": 3, "z": 11}, 13).values()) == 13


def test_same_seed_same_subset_other_seed_other_items():
    items = [(s, i) for s in "abcd" for i in range(25)]
    key = lambda x: x[0]  # noqa: E731
    assert stratified_subset(items, 20, key, seed=1) == stratified_subset(items, 20, key, seed=1)
    assert stratified_subset(items, 20, key, seed=1) != stratified_subset(items, 20, key, seed=2)
    assert stratified_subset(items, None, key) == items and stratified_subset(items, 500, key) == items


def test_the_sample_sets_subsets_cover_their_subjects_and_categories():
    from definemed.data.sample import load_instructions, load_mcq

    mcq = load_mcq()
    sub = stratified_subset(mcq, 40, key=lambda q: q.subject)
    subjects = {q.subject for q in mcq}
    assert {q.subject for q in sub} == subjects and {q.subject for q in mcq[:40]} != subjects
    inst = load_instructions()
    cats = {i.category for i in inst}
    assert {i.category for i in stratified_subset(inst, len(cats), key=lambda i: i.category)} == cats
