"""Recipe composition (defaults, interpolation, overrides) and its errors."""

import pytest

from wamzoo.errors import RecipeError
from wamzoo.recipes import compose, find_recipe, list_recipes

BASE = """
name: base
policy:
  world_model: {name: dit.video, dim: 32, num_layers: 2, num_heads: 2, head_dim: 16}
  action_expert: {name: dit.action, dim: 16, num_layers: 2, num_heads: 2, head_dim: 16}
  coupling: {name: mot, mask: {"action -> action": all, "video.* -> video.*": all}}
  scheduler: {name: flow-matching}
trainer: {max_steps: 10, batch_size: 4}
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_compose_in_order_and_file_overrides(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "fast.yaml", "trainer: {lr: 0.5, warmup_steps: '${trainer.max_steps}'}\n")
    child = write(tmp_path, "child.yaml", "defaults: [base.yaml, fast]\nname: child\ntrainer: {max_steps: 20}\n")
    r = compose(child)
    assert r.name == "child" and r.trainer.lr == 0.5 and r.trainer.max_steps == 20
    assert r.trainer.warmup_steps == 20  # interpolation resolved after merging
    assert r.trainer.batch_size == 4 and r.policy["world_model"]["dim"] == 32
    r = compose(child, ["trainer.max_steps=7", "policy.world_model.dim=64"])
    assert r.trainer.max_steps == 7 and r.trainer.warmup_steps == 7 and r.policy["world_model"]["dim"] == 64


def test_replacing_a_component_keeps_the_arguments_it_takes(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    codec = write(tmp_path, "c.yaml", "defaults: [base.yaml]\npolicy:\n  codec: {name: patch, patch: 2}\n"
                                       "  scheduler: {name: flow-matching, shift: 3.0}\n")
    assert compose(codec).policy["scheduler"] == {"name": "flow-matching", "shift": 3.0}
    child = write(tmp_path, "d.yaml", "defaults: [base.yaml]\ndata: {name: synthetic, size: 8, height: 16}\n")
    assert compose(child).data == {"name": "synthetic", "size": 8, "height": 16} and compose(child).notes == []
    # the recipe itself replaces the data module: metaworld takes size, not height
    other = write(tmp_path, "e.yaml", "defaults: [d.yaml]\ndata: {name: metaworld, root: somewhere}\n")
    r = compose(other)
    assert r.data == {"name": "metaworld", "size": 8, "root": "somewhere"}
    assert len(r.notes) == 1 and "data: metaworld" in r.notes[0] and "replaces synthetic" in r.notes[0]
    assert "dropped height" in r.notes[0] and "e.yaml" in r.notes[0]
    # a later default replaces it the same way as the recipe or an override
    write(tmp_path, "mw.yaml", "data: {name: metaworld, root: there}\n")
    later = write(tmp_path, "f.yaml", "defaults: [d.yaml, mw.yaml]\n")
    assert compose(later).data == {"name": "metaworld", "size": 8, "root": "there"}
    r = compose(codec, ["policy.codec.name=wan-vae"])
    assert r.policy["codec"] == {"name": "wan-vae"} and r.notes == [
        "policy.codec: wan-vae (command line) replaces patch; dropped patch, which wan-vae does not take"]
    # the layer that names the new component may not give it arguments it does not take
    bad = write(tmp_path, "g.yaml", "defaults: [d.yaml]\ndata: {name: metaworld, root: x, heigth: 16}\n")
    with pytest.raises(RecipeError, match=r"g.yaml: data: unknown argument 'heigth' for data 'metaworld'"):
        compose(bad)


def test_recipe_show_prints_what_composition_dropped(tmp_path, capsys):
    from wamzoo.cli import main

    write(tmp_path, "base.yaml", BASE + "data: {name: synthetic, size: 8, height: 16}\n")
    assert main(["recipe", "show", str(tmp_path / "base.yaml"), "data.name=metaworld", "data.root=r"]) == 0
    out = capsys.readouterr().out
    assert "# note: data: metaworld (command line) replaces synthetic; dropped height" in out.replace("\n", " ")


def test_unknown_trainer_key_names_file_and_key(tmp_path):
    p = write(tmp_path, "bad.yaml", BASE.replace("trainer: {max_steps: 10,", "trainer: {max_stpes: 10,"))
    with pytest.raises(RecipeError, match=r"bad.yaml: key 'trainer.max_stpes'"):
        compose(p)


def test_wrong_type_names_file_and_key(tmp_path):
    p = write(tmp_path, "bad.yaml", BASE.replace("max_steps: 10", "max_steps: lots"))
    with pytest.raises(RecipeError, match=r"bad.yaml: key 'trainer.max_steps'"):
        compose(p)


def test_component_arguments_are_checked(tmp_path):
    p = write(tmp_path, "bad.yaml", BASE.replace("dim: 32,", "dimm: 32,"))
    with pytest.raises(RecipeError, match=r"bad.yaml: policy.world_model: unknown argument 'dimm'.*Did you mean: dim"):
        compose(p)
    p = write(tmp_path, "bad2.yaml", BASE.replace("name: dit.video", "name: dit.vidoe"))
    with pytest.raises(RecipeError, match=r"policy.world_model.name: unknown world model 'dit.vidoe'.*dit.video"):
        compose(p)
    p = write(tmp_path, "bad3.yaml", BASE.replace("  scheduler: {name: flow-matching}\n", ""))
    with pytest.raises(RecipeError, match="policy.scheduler is missing"):
        compose(p)
    p = write(tmp_path, "bad4.yaml", BASE + "data: {name: synthetic, size: many}\n")
    with pytest.raises(RecipeError, match=r"data: argument 'size'.*expects int"):
        compose(p)


def test_bad_defaults_and_cycles(tmp_path):
    p = write(tmp_path, "a.yaml", "defaults: [b.yaml]\n")
    write(tmp_path, "b.yaml", "defaults: [a.yaml]\n")
    with pytest.raises(RecipeError, match="cycle"):
        compose(p)
    p = write(tmp_path, "c.yaml", "defaults: [nowhere]\n")
    with pytest.raises(RecipeError, match="defaults entry 'nowhere'.*unknown recipe"):
        compose(p)
    p = write(tmp_path, "d.yaml", "trainer: [1, 2\n")
    with pytest.raises(RecipeError, match="cannot be parsed"):
        compose(p)


def test_bad_overrides(tmp_path):
    p = write(tmp_path, "base.yaml", BASE)
    with pytest.raises(RecipeError, match="trainer.nope"):
        compose(p, ["trainer.nope=1"])


def test_registered_recipes_by_name():
    assert "tiny-mot" in list_recipes("tiny*")
    assert find_recipe("tiny-mot").name == "tiny-mot.yaml"
    with pytest.raises(KeyError, match="Did you mean: tiny-mot"):
        find_recipe("tiny-mto")


@pytest.mark.parametrize("paper", ["fast-wam", "x-wam", "aha-wam", "harmo-wam"])
def test_the_shared_training_recipe_composes_over_every_paper(tmp_path, paper):
    """`shared/training` (issue 16's recipe) lays its views, chunk tails and rate decay over any paper's recipe
    and keeps the paper's own window and data module."""
    own = compose(paper)
    r = compose(write(tmp_path, "row.yaml", f"defaults: [{paper}, shared/training]\nname: row\n"))
    assert list(r.data["cameras"]) == ["front", "top"] and r.data["root"].endswith("-front")
    assert r.data["action_tail"] == "repeat" and r.trainer.lr_decay == "budget"
    assert r.data["name"] == own.data["name"] and r.data["horizon"] == own.data["horizon"]
    assert r.policy == own.policy
