"""Attention supervision targets: the right step, the right regions, a loss that rewards looking there."""

import numpy as np
import torch

from mmdemo.data import sort_of_clevr as soc
from mmdemo.evaluate import region_holds
from mmdemo.supervision import attention_loss, attention_targets, hop2_objects, region_masks
from mmdemo.text import load_tokenizer, tokenize


def test_region_masks_follow_the_grounding_rule():
    rng = np.random.default_rng(3)
    for grid in (5, 7, 10, 15):
        for _ in range(30):
            scene = soc.random_scene(rng)
            objects = list(scene.objects[: int(rng.integers(0, 4))])
            expected = [any(region_holds(r, grid, o) for o in objects) for r in range(grid * grid)]
            assert region_masks(objects, grid).tolist() == expected


def test_hop2_objects_are_the_answers_objects():
    rng = np.random.default_rng(4)
    for _ in range(50):
        scene = soc.random_scene(rng)
        for q in soc.make_questions(scene, rng, "train"):
            objs = hop2_objects(scene, q)
            if q.subtype in ("closest", "furthest"):
                assert len(objs) == 1 and objs[0].shape == q.answer and objs[0].colour != q.colour
            elif q.subtype == "count":
                assert len(objs) == int(q.answer)
            else:
                assert objs == []


def test_targets_point_at_the_colour_word_and_the_loss_rewards_looking_there():
    rng = np.random.default_rng(5)
    scene = soc.random_scene(rng)
    questions = soc.make_questions(scene, rng, "train")
    ids, _ = tokenize([q.text for q in questions], 32)
    longest = max(map(len, ids))
    token_ids = torch.tensor([row + [0] * (longest - len(row)) for row in ids])
    grid = 5
    targets = attention_targets(token_ids, questions, [scene] * len(questions), grid)
    tok = load_tokenizer()
    for row, step, q in zip(ids, targets.step.tolist(), questions):
        word = tok.convert_ids_to_tokens(row[step])
        assert word == q.colour or (q.colour == "gray" and word == "grey")
    b, t, r = len(questions), token_ids.shape[1], grid * grid
    uniform = torch.full((b, t, 2, r), 1.0 / r)
    on_target = uniform.clone()
    rows = torch.arange(b)
    for hop, mask in ((0, targets.hop1), (1, targets.hop2)):
        spread = mask.float() / mask.float().sum(-1, keepdim=True).clamp(min=1)
        spread[~mask.any(-1)] = 1.0 / r
        on_target[rows, targets.step, hop] = spread
    assert attention_loss(on_target, targets).item() < 1e-4
    assert attention_loss(uniform, targets).item() > 1.0
