from __future__ import annotations

import pytest
import torch

from wsol.cams.targets import ClassMapping, TargetError, pad_labels, select_dataset_targets
from wsol.models import ModelSpec


def _spec(names, multi_label=False):
    return ModelSpec(
        net=torch.nn.Identity(), class_names=names, target_layer="", multi_label=multi_label
    )


def test_mapping_by_name_and_error_without_map():
    m = ClassMapping.build(["b", "a"], _spec(["a", "b", "c"]))
    assert m.matrix.tolist() == [[False, True, False], [True, False, False]]
    with pytest.raises(TargetError, match="class_map"):
        ClassMapping.build(["zebra"], _spec(["a", "b"]))


def test_combine_rule_takes_the_best_mapped_class_for_probability_and_map():
    # Dataset class "dog" <- model classes 0, 1; "cat" <- 2; model class 3 unmapped.
    m = ClassMapping.build(
        ["dog", "cat"], _spec(["x0", "x1", "x2", "x3"]), {"dog": [0, 1], "cat": [2]}
    )
    logits = torch.tensor([[1.0, 2.0, 0.5, 3.0]])
    probs = torch.softmax(logits, 1)
    dp = m.dataset_probs(probs)
    torch.testing.assert_close(dp, torch.stack([probs[:, 1], probs[:, 2]], 1))
    # The dog map is model class 1 (logit 2.0 beats 1.0), the one its probability is;
    # padding stays -1.
    t = m.model_targets(logits, torch.tensor([[0, 1, -1]]))
    assert t.tolist() == [[1, 2, -1]]


def test_dataset_probs_is_the_largest_member_and_zero_for_a_class_without_members():
    gen = torch.Generator().manual_seed(0)
    groups = [[3, 7, 1], [], [0], [7, 2], [5]]
    m = ClassMapping(groups, 8, multi_label=False)
    probs = torch.rand(4, 8, generator=gen)
    want = torch.stack([probs[:, g].amax(1) if g else torch.zeros(4) for g in groups], dim=1)
    assert torch.equal(m.dataset_probs(probs), want)


def test_ranking_does_not_favour_classes_with_many_model_classes():
    # "dog" has three breeds at 0.2 each (sum 0.6); "cat" one class at 0.3. A sum would
    # rank dog first; the image's best single class is the cat, and top-1 picks cat.
    m = ClassMapping.build(
        ["dog", "cat"], _spec(["b0", "b1", "b2", "c", "other"]), {"dog": [0, 1, 2], "cat": [3]}
    )
    probs = torch.tensor([[0.2, 0.2, 0.2, 0.3, 0.1]])
    dp = m.dataset_probs(probs)
    torch.testing.assert_close(dp, torch.tensor([[0.2, 0.3]]))
    assert select_dataset_targets("topk", dp, None, topk=1).tolist() == [[1]]
    # The same holds for a probability floor: only the cat reaches 0.25.
    assert select_dataset_targets("prob", dp, None, min_prob=0.25).tolist() == [[1]]


def test_combine_rule_multilabel_takes_max():
    m = ClassMapping.build(["dog"], _spec(["a", "b"], multi_label=True), {"dog": [0, 1]})
    p = torch.tensor([[0.3, 0.6]])
    assert m.dataset_probs(p).tolist() == [[pytest.approx(0.6)]]


def test_missing_class_in_map_is_clear():
    with pytest.raises(TargetError, match="skip_unmapped"):
        ClassMapping.build(["dog", "person"], _spec(["a"]), {"dog": [0]})


def test_select_targets_modes():
    probs = torch.tensor([[0.1, 0.7, 0.6], [0.9, 0.05, 0.05]])
    gt = pad_labels([[2], [0, 1]])
    assert gt.tolist() == [[2, -1], [0, 1]]
    assert select_dataset_targets("gt", probs, gt).tolist() == gt.tolist()
    assert select_dataset_targets("topk", probs, None, topk=2).tolist() == [[1, 2], [0, 1]]
    sel = select_dataset_targets("prob", probs, None, min_prob=0.5)
    assert sel.tolist() == [[1, 2], [0, -1]]
    with pytest.raises(TargetError):
        select_dataset_targets("gt", probs, None)
    with pytest.raises(TargetError, match="valid"):
        select_dataset_targets("every", probs, None)


def _ranked(probs: torch.Tensor, tiebreak: torch.Tensor | None, k: int) -> list[list[int]]:
    """By hand: classes by probability, then tiebreak (higher first), then index."""
    out = []
    for i in range(len(probs)):
        keys = [
            (-float(probs[i, d]), -float(tiebreak[i, d]) if tiebreak is not None else 0.0, d)
            for d in range(probs.shape[1])
        ]
        out.append([d for *_, d in sorted(keys)[:k]])
    return out


def test_topk_breaks_saturated_ties_by_logit_then_by_class():
    # two sigmoids at exactly 1.0 in float32: the larger logit is the more probable class
    logits = torch.tensor([[18.0, -3.0, 25.0, 30.0], [40.0, 40.0, 1.0, 2.0]])
    probs = torch.sigmoid(logits)
    assert probs[0, 2] == probs[0, 3] == probs[1, 0] == 1.0
    got = select_dataset_targets("topk", probs, None, 2, tiebreak=logits)
    assert got.tolist() == [[3, 2], [0, 1]]
    # without a tiebreak, equal probabilities go to the lower class
    assert select_dataset_targets("topk", probs, None, 3).tolist() == [[0, 2, 3], [0, 1, 3]]
    rng = torch.Generator().manual_seed(0)
    for _ in range(20):  # many ties: the same order as by hand
        p = torch.randint(0, 3, (5, 7), generator=rng).float() / 2
        t = torch.randint(0, 3, (5, 7), generator=rng).float()
        for k in (1, 3, 7):
            assert select_dataset_targets("topk", p, None, k, tiebreak=t).tolist() == _ranked(
                p, t, k
            )
            assert select_dataset_targets("topk", p, None, k).tolist() == _ranked(p, None, k)


def test_dataset_logits_rank_as_dataset_probs():
    spec = _spec(["a", "b", "c", "d"], multi_label=True)
    mapping = ClassMapping.build(["x", "y", "z"], spec, {"x": [0, 2], "y": [1], "z": []})
    logits = torch.tensor([[1.0, -2.0, 3.0, 0.5]])
    assert mapping.dataset_logits(logits).tolist() == [[3.0, -2.0, float("-inf")]]
    probs = mapping.dataset_probs(torch.sigmoid(logits))
    assert probs[0, 0] == torch.sigmoid(torch.tensor(3.0)) and probs[0, 2] == 0.0


@pytest.mark.gpu
def test_cpu_and_cuda_choose_the_same_classes():
    logits = torch.randn(64, 30) * 20  # many saturated sigmoids
    probs = torch.sigmoid(logits)
    cpu = select_dataset_targets("topk", probs, None, 3, tiebreak=logits)
    cuda = select_dataset_targets("topk", probs.cuda(), None, 3, tiebreak=logits.cuda())
    assert torch.equal(cpu, cuda.cpu())
