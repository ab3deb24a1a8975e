"""Attention supervision targets: the right step, the right regions, a loss that rewards looking there."""

import numpy as np
import torch

from mmdemo.processing import pad_token_ids
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.evaluate import holds
from mmdemo.tasks.sort_of_clevr.supervision import attention_loss, attention_targets, hop2_objects
from mmdemo.text import load_tokenizer, tokenize


def test_region_masks_follow_the_grounding_rule():
    rng = np.random.default_rng(3)
    for grid in (5, 7, 10, 15):
        for _ in range(30):
            scene = soc.random_scene(rng)
            objects = list(scene.objects[: int(rng.integers(0, 4))])
            cell = soc.SIZE / grid  # written out here, independently of the package: a cell overlaps the 10 x 10 footprint
            expected = [
                any(
                    (r % grid) * cell < o.x + 5 and o.x - 5 < (r % grid + 1) * cell and (r // grid) * cell < o.y + 5 and o.y - 5 < (r // grid + 1) * cell
                    for o in objects
                )
                for r in range(grid * grid)
            ]
            assert [any(holds(r, grid, o) for o in objects) for r in range(grid * grid)] == expected
            assert soc.region_masks(objects, grid).tolist() == expected


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


def _training_batch(seed: int, grid: int):
    """One scene's 20 training questions: (questions, id lists, padded ids (B, T), mask (B, T), targets)."""
    rng = np.random.default_rng(seed)
    scene = soc.random_scene(rng)
    questions = soc.make_questions(scene, rng, "train")
    ids, _ = tokenize([q.text for q in questions], 32)
    token_ids, token_mask = pad_token_ids(ids)
    return questions, ids, token_ids, token_mask, attention_targets(token_ids, questions, [scene] * len(questions), grid)


def test_targets_point_at_the_colour_word_and_the_loss_rewards_looking_there():
    grid = 5
    questions, ids, token_ids, _, targets = _training_batch(5, grid)
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


def test_held_hop1_counts_every_step_from_the_colour_word_to_the_end_only() -> None:
    grid = 5
    questions, _, token_ids, token_mask, targets = _training_batch(6, grid)
    b, t, r = len(questions), token_ids.shape[1], grid * grid
    spread1 = targets.hop1.float() / targets.hop1.float().sum(-1, keepdim=True)
    spread2 = targets.hop2.float() / targets.hop2.float().sum(-1, keepdim=True).clamp(min=1)
    spread2[~targets.hop2.any(-1)] = 1.0 / r
    att = torch.full((b, t, 2, r), 1.0 / r)
    rows = torch.arange(b)
    att[rows, targets.step, 0] = spread1
    att[rows, targets.step, 1] = spread2
    # Only the colour word's step on target: fine for the old rule, penalised when hop 1 is held.
    assert attention_loss(att, targets).item() < 1e-4
    assert attention_loss(att, targets, token_mask).item() > 0.5
    held = att.clone()
    for i in range(b):
        for s in range(int(targets.step[i]), t):
            held[i, s, 0] = spread1[i]
    assert attention_loss(held, targets, token_mask).item() < 1e-4
    # Steps before the colour word and padding steps are free: changing them changes nothing.
    free = held.clone()
    for i in range(b):
        elsewhere = torch.zeros(r)
        elsewhere[int((~targets.hop1[i]).nonzero()[0])] = 1.0  # all weight off the named object
        free[i, : int(targets.step[i]), 0] = elsewhere
        free[i, ~token_mask[i], 0] = elsewhere
    assert torch.equal(attention_loss(free, targets, token_mask), attention_loss(held, targets, token_mask))


def test_held_hop2_counts_every_step_from_the_colour_word_on_for_relational_questions_only() -> None:
    grid = 5
    questions, _, token_ids, token_mask, targets = _training_batch(6, grid)
    b, t, r = len(questions), token_ids.shape[1], grid * grid
    relational = targets.hop2.any(-1)
    assert relational.any() and (~relational).any()  # the batch has both kinds
    spread1 = targets.hop1.float() / targets.hop1.float().sum(-1, keepdim=True)
    spread2 = targets.hop2.float() / targets.hop2.float().sum(-1, keepdim=True).clamp(min=1)
    att = torch.full((b, t, 2, r), 1.0 / r)
    for i in range(b):
        att[i, int(targets.step[i]):, 0] = spread1[i]  # hop 1 held
        if relational[i]:
            att[i, int(targets.step[i]), 1] = spread2[i]  # hop 2 on target at the colour word only
    both = (True, True)
    assert attention_loss(att, targets, token_mask).item() < 1e-4  # hop 1 held, hop 2 at the colour word
    assert attention_loss(att, targets, token_mask, hold=both).item() > 0.3  # hop 2 must stay there too
    held = att.clone()
    for i in range(b):
        if relational[i]:
            held[i, int(targets.step[i]):, 1] = spread2[i]
    assert attention_loss(held, targets, token_mask, hold=both).item() < 1e-4
    # Before the colour word, padding, and hop 2 of a non-relational question are free.
    free = held.clone()
    for i in range(b):
        elsewhere = torch.zeros(r)
        elsewhere[int((~targets.hop1[i] & ~targets.hop2[i]).nonzero()[0])] = 1.0
        free[i, : int(targets.step[i]), 1] = elsewhere
        free[i, ~token_mask[i], 1] = elsewhere
        if not relational[i]:
            free[i, :, 1] = elsewhere
    assert torch.equal(attention_loss(free, targets, token_mask, hold=both), attention_loss(held, targets, token_mask, hold=both))
    # Holding only hop 2: hop 1 is then asked at the colour word alone.
    only2 = held.clone()
    for i in range(b):
        only2[i, int(targets.step[i]) + 1:, 0] = 1.0 / r
    assert attention_loss(only2, targets, token_mask, hold=(False, True)).item() < 1e-4
    assert attention_loss(only2, targets, token_mask, hold=both).item() > 0.3
    # Held, hop 2 still answers for the colour word itself: on target everywhere but there costs more than
    # on target only there.
    late = held.clone()
    for i in range(b):
        if relational[i]:
            late[i, int(targets.step[i]), 1] = 1.0 / r
    assert attention_loss(late, targets, token_mask, hold=both) > attention_loss(att, targets, token_mask, hold=both)


def test_waiting_asks_every_hop_to_spread_evenly_before_the_colour_word_only() -> None:
    grid = 5
    questions, _, token_ids, token_mask, targets = _training_batch(6, grid)
    b, t, r = len(questions), token_ids.shape[1], grid * grid
    assert (targets.step > 0).all()  # the spec's questions name their object after a few words
    spread1 = targets.hop1.float() / targets.hop1.float().sum(-1, keepdim=True)
    spread2 = targets.hop2.float() / targets.hop2.float().sum(-1, keepdim=True).clamp(min=1)
    spread2[~targets.hop2.any(-1)] = 1.0 / r
    att = torch.full((b, t, 2, r), 1.0 / r)  # uniform before the colour word: a reader that waits
    rows = torch.arange(b)
    for i in range(b):
        att[i, int(targets.step[i]):, 0] = spread1[i]
    att[rows, targets.step, 1] = spread2
    waited = attention_loss(att, targets, token_mask, wait=True)
    assert waited.item() < 1e-4
    # A confident look before the object is named costs, in either hop; without wait it is free.
    for hop in (0, 1):
        peeked = att.clone()
        peeked[0, 0, hop] = torch.nn.functional.one_hot(torch.tensor(3), r).float() * 0.9 + 0.1 / r
        assert attention_loss(peeked, targets, token_mask, wait=True).item() > waited.item() + 1e-3  # one look, one question of 20
        assert torch.equal(attention_loss(peeked, targets, token_mask), attention_loss(att, targets, token_mask))
    # Steps from the colour word on are not asked to wait.
    later = att.clone()
    last = int(targets.step[0])
    later[0, last:, 1] = torch.nn.functional.one_hot(torch.tensor(3), r).float() * 0.9 + 0.1 / r
    later[0, last, 1] = att[0, last, 1]  # hop 2's own target at the colour word stays
    assert torch.equal(attention_loss(later, targets, token_mask, wait=True), waited)
