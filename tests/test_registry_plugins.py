"""Registry lookups and errors; plugin loading with broken, raising and clashing plugins."""

import importlib.metadata as md
import sys
import textwrap
import types

import pytest

import wamzoo
from wamzoo import plugins as plugins_mod
from wamzoo.cli import main
from wamzoo.errors import RegistryError
from wamzoo.hookspecs import hookimpl
from wamzoo.registry import (COMPONENT_KINDS, KINDS, ConfigError, DuplicateNameError, Pretrained, Registry,
                             UnknownNameError)


class Widget:
    """A test component.

    More text.
    """

    def __init__(self, width: int, scale: float = 1.0, name: str = "w"):
        self.width, self.scale, self.name = width, scale, name


def test_register_create_and_list():
    reg = Registry()
    reg.register("world_model", "fast.video", Widget, plugin="p")
    reg.register("coupling", "fast.mot", Widget, plugin="p")
    assert [e.name for e in reg.entries("fast*")] == ["fast.video", "fast.mot"]  # by kind (KINDS' order), then name
    assert [e.name for e in reg.entries("coupling:*")] == ["fast.mot"]
    w = reg.create("world_model", "fast.video", width=3, scale=2)
    assert (w.width, w.scale) == (3, 2)
    assert reg.get("world_model", "fast.video").summary == "A test component."


def test_lazy_reference_is_imported_on_use_and_documented_without_import():
    reg = Registry()
    entry = reg.register("scheduler", "fm", "wamzoo.schedulers:FlowMatchingScheduler")
    assert entry.summary.startswith("Independent flow-matching times")
    assert isinstance(entry.target, str)
    assert reg.create("scheduler", "fm", shift=3.0).shift == 3.0


def test_registry_errors():
    reg = Registry()
    reg.register("world_model", "fast-wam.video", Widget)
    with pytest.raises(DuplicateNameError, match="clashes"):
        reg.register("world_model", "fast-wam.video", Widget, plugin="other")
    with pytest.raises(UnknownNameError, match="Did you mean: fast-wam.video"):
        reg.get("world_model", "fast-wam.vide")
    with pytest.raises(RegistryError, match="kinds are"):
        reg.register("gizmo", "x", Widget)
    with pytest.raises(ConfigError, match="Did you mean: width"):
        reg.create("world_model", "fast-wam.video", widht=3)
    with pytest.raises(ConfigError, match="expects float"):
        reg.create("world_model", "fast-wam.video", width=3, scale="big")
    with pytest.raises(ConfigError, match="needs argument"):
        reg.create("world_model", "fast-wam.video")


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Three installed plugins: one good, one that fails to import, one that clashes and raises."""
    (tmp_path / "good_plugin.py").write_text(textwrap.dedent('''
        from wamzoo.hookspecs import hookimpl
        @hookimpl
        def register_components(register):
            register("scheduler", "good.fm", "wamzoo.schedulers:FlowMatchingScheduler", tiny={})
    '''))
    (tmp_path / "broken_plugin.py").write_text("import a_module_that_does_not_exist\n")
    (tmp_path / "clash_plugin.py").write_text(textwrap.dedent('''
        from wamzoo.hookspecs import hookimpl
        @hookimpl
        def register_components(register):
            register("scheduler", "good.fm", "wamzoo.schedulers:FlowMatchingScheduler")
            register("scheduler", "clash.fm", "wamzoo.schedulers:FlowMatchingScheduler")
        @hookimpl
        def register_recipes(register):
            raise RuntimeError("boom")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    # loaded in name order: good first, so clash's duplicate is the one rejected
    eps = [md.EntryPoint(name=n, value=f"{m}_plugin", group="wamzoo")
           for n, m in (("a-good", "good"), ("b-broken", "broken"), ("c-clash", "clash"))]
    real = plugins_mod.md.entry_points  # other groups (e.g. triton's backends, found when torch compiles) stay real
    monkeypatch.setattr(plugins_mod.md, "entry_points",
                        lambda group=None, **kw: eps if group == "wamzoo" else real(group=group, **kw))
    yield
    for n in ("good_plugin", "broken_plugin", "clash_plugin"):
        sys.modules.pop(n, None)
    plugins_mod.reset()


class WideWidget(Widget):
    """A widget that forwards its parent's arguments and sets one of them itself."""

    def __init__(self, *, depth: int = 2, **kwargs):
        super().__init__(name="wide", **kwargs)
        self.depth = depth


class OpenWidget(Widget):
    """``**options`` that do not go to the parent: any argument is taken."""

    def __init__(self, **options):
        super().__init__(1)
        self.options = options


def test_forwarded_kwargs_inherit_the_parents_arguments():
    reg = Registry()
    entry = reg.register("world_model", "wide", WideWidget)
    params = entry.parameters()
    assert list(params) == ["depth", "width", "scale"]  # `name` is the subclass's own business
    assert params["width"].kind is params["width"].KEYWORD_ONLY and params["width"].default is params["width"].empty
    w = reg.create("world_model", "wide", width=3, scale=2.0, depth=4)
    assert (w.width, w.scale, w.depth, w.name) == (3, 2.0, 4, "wide")
    with pytest.raises(ConfigError, match="argument 'scale' of world_model 'wide' expects float"):
        reg.create("world_model", "wide", width=3, scale="big")  # inherited arguments are type-checked
    with pytest.raises(ConfigError, match="unknown argument 'widht'.*Did you mean: width"):
        reg.create("world_model", "wide", widht=3)
    with pytest.raises(ConfigError, match="unknown argument 'name'"):
        reg.create("world_model", "wide", width=3, name="x")
    with pytest.raises(ConfigError, match="needs argument.*width"):
        reg.create("world_model", "wide")
    reg.register("world_model", "open", OpenWidget)
    assert reg.create("world_model", "open", anything=1).options == {"anything": 1}


def test_broken_plugins_are_reported_and_do_not_break_others(fake_plugins):
    p = plugins_mod.get_plugins(reload=True)
    names = p.registry.names("scheduler")
    assert "good.fm" in names and "clash.fm" in names and "flow-matching" in names
    whats = " | ".join(f"{x.plugin}: {x.what}" for x in p.problems)
    assert "b-broken: failed to import" in whats
    assert "c-clash: scheduler 'good.fm' from plugin 'c-clash' clashes with the one from plugin 'a-good'" in whats
    assert "c-clash: hook register_recipes raised RuntimeError('boom')" in whats
    assert p.registry.get("scheduler", "good.fm").plugin == "a-good"


def test_allow_and_block_lists(fake_plugins, monkeypatch):
    monkeypatch.setenv("WAMZOO_PLUGINS", "a-good")
    p = plugins_mod.get_plugins(reload=True)
    assert set(p.info) == {"wamzoo", "a-good"} and not p.problems
    monkeypatch.delenv("WAMZOO_PLUGINS")
    monkeypatch.setenv("WAMZOO_BLOCK_PLUGINS", "b-broken,c-clash")
    p = plugins_mod.get_plugins(reload=True)
    assert set(p.info) == {"wamzoo", "a-good"}
    monkeypatch.setenv("WAMZOO_PLUGINS", "none")
    monkeypatch.delenv("WAMZOO_BLOCK_PLUGINS")
    assert set(plugins_mod.get_plugins(reload=True).info) == {"wamzoo"}


def test_doctor_and_list_survive_broken_plugins(fake_plugins, capsys):
    plugins_mod.get_plugins(reload=True)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "failed to import" in out and "a-good" in out
    assert main(["list", "good*"]) == 0
    assert "good.fm" in capsys.readouterr().out


def test_explicit_plugin_objects():
    mod = types.SimpleNamespace()

    @hookimpl
    def register_components(register):
        register("codec", "test.patch", "wamzoo.codecs:PatchCodec")

    mod.register_components = register_components
    plugins_mod.use_plugins(("explicit", mod), entry_points=False)
    try:
        assert wamzoo.list_components("test.*") == ["codec:test.patch"]
        assert wamzoo.create("codec", "test.patch", patch=2).latent_channels == 12
    finally:
        plugins_mod.reset()


# -- one registry, one naming scheme ----------------------------------------------------------------
def test_one_naming_scheme_for_every_kind():
    """kind + ``family.tag``; the kind tells equal names apart; ``/`` reads as ``.``; ``kind:`` patterns."""
    reg = Registry()
    reg.register("world_model", "my-wam.video", Widget, plugin="my-wam")
    reg.register("recipe", "my-wam", "recipes/my-wam.yaml", plugin="my-wam", description="My WAM, small.")
    reg.register("pretrained", "my-wam/mw-easy", Pretrained("my-wam/mw-easy", "local:/x", description="trained"))
    reg.register("converter", "my-wam.release", "wamzoo.hub:convert", plugin="my-wam")
    reg.register("converter", "my-wam.video", "wamzoo.hub:convert")  # same name, another kind: allowed
    assert reg.names("pretrained") == ["my-wam.mw-easy"]  # stored in the canonical spelling
    assert reg.get("pretrained", "my-wam/mw-easy") is reg.get("pretrained", "my-wam.mw-easy")
    assert ("pretrained", "my-wam/mw-easy") in reg and ("recipe", "my-wam.mw-easy") not in reg
    assert [(e.kind, e.name) for e in reg.entries("my-wam*")] == [
        ("world_model", "my-wam.video"), ("recipe", "my-wam"), ("pretrained", "my-wam.mw-easy"),
        ("converter", "my-wam.release"), ("converter", "my-wam.video")]  # by kind (KINDS' order), then name
    assert [e.name for e in reg.entries("*", kind="converter")] == ["my-wam.release", "my-wam.video"]
    assert [e.kind for e in reg.entries("converter:*.video")] == ["converter"]
    assert [e.name for e in reg.entries("my-wam/*", kind=("recipe", "pretrained"))] == ["my-wam.mw-easy"]
    assert [e.kind for e in reg.find("my-wam.video")] == ["world_model", "converter"]
    assert [e.kind for e in reg.find("converter:my-wam.video")] == ["converter"]
    assert reg.get("recipe", "my-wam").summary == "My WAM, small."
    assert reg.get("pretrained", "my-wam.mw-easy").summary == "trained"
    assert reg.get("converter", "my-wam.release").summary.startswith("The policy the registered converter")
    with pytest.raises(UnknownNameError, match=r"unknown pretrained policy 'my-wam/mw-eas'\. Did you mean: my-wam.mw-easy"):
        reg.get("pretrained", "my-wam/mw-eas")
    with pytest.raises(UnknownNameError, match="unknown recipe 'my-wm'.*Did you mean: my-wam"):
        reg.get("recipe", "my-wm")
    for bad in ("my wam", "kind:name", "fast*", "", ".hidden"):
        with pytest.raises(RegistryError, match="not a valid name"):
            reg.register("recipe", bad, "x.yaml")
    with pytest.raises(DuplicateNameError, match="clashes"):
        reg.register("pretrained", "my-wam.mw-easy", Pretrained("my-wam.mw-easy", "local:/y"), plugin="other")
    with pytest.raises(RegistryError, match="not a component"):
        reg.create("recipe", "my-wam")
    with pytest.raises(RegistryError, match="kinds are"):
        reg.entries(kind="recipes")


@pytest.fixture
def every_kind(tmp_path):
    """A plugin registering all four kinds, some wrongly, beside the core; the state is reset afterwards."""
    (tmp_path / "recipes" / "base").mkdir(parents=True)
    (tmp_path / "recipes" / "my-wam.yaml").write_text("defaults: [tiny-mot]\nname: my-wam\ndescription: Mine.\n")
    (tmp_path / "recipes" / "base" / "size.yaml").write_text("policy: {}\n")  # no name: a default only
    (tmp_path / "recipes" / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "recipes" / "clash.yaml").write_text("name: tiny-mot\n")
    mod = types.SimpleNamespace()

    @hookimpl
    def register_components(register):
        register("scheduler", "my-wam.fm", "wamzoo.schedulers:FlowMatchingScheduler")
        register("recipe", "my-wam.sneaky", "x.yaml")  # recipes have their own hook

    @hookimpl
    def register_recipes(register):
        register(tmp_path / "recipes")

    @hookimpl
    def register_pretrained(register):
        register(Pretrained(name="my-wam/tiny", repo_id="local:/nowhere", converter="my-wam.release"))
        register({"name": "not a spec"})

    @hookimpl
    def register_converters(register):
        register("my-wam.release", "wamzoo.hub:convert")

    for hook in (register_components, register_recipes, register_pretrained, register_converters):
        setattr(mod, hook.__name__, hook)
    yield plugins_mod.use_plugins(("my-wam", mod), entry_points=False)
    plugins_mod.reset()


def test_plugins_register_every_kind_into_the_one_registry(every_kind):
    p, reg = every_kind, every_kind.registry
    assert {e.kind for e in reg.entries()} == set(KINDS)
    assert {e.kind for e in reg.entries(kind=COMPONENT_KINDS)} == set(COMPONENT_KINDS)
    assert reg.get("recipe", "my-wam").target.name == "my-wam.yaml" and reg.get("recipe", "my-wam").plugin == "my-wam"
    assert reg.get("recipe", "tiny-mot").plugin == "wamzoo"  # the core registers through the same hooks
    spec = reg.get("pretrained", "my-wam/tiny").target
    assert spec.name == "my-wam.tiny" and spec.converter == "my-wam.release"  # canonical in the spec too
    assert reg.get("converter", spec.converter).plugin == "my-wam"
    assert p.info["my-wam"].counts == {"scheduler": 1, "recipe": 1, "pretrained": 1, "converter": 1}
    whats = " | ".join(x.what for x in p.problems if x.plugin == "my-wam")
    assert "'recipe' is not a component kind" in whats
    assert "broken.yaml cannot be read" in whats
    assert "recipe 'tiny-mot' from plugin 'my-wam' clashes with the one from plugin 'wamzoo'" in whats
    assert "register_pretrained takes wamzoo.registry.Pretrained specs, got dict" in whats
    assert wamzoo.list_names("my-wam*") == ["scheduler:my-wam.fm", "recipe:my-wam", "pretrained:my-wam.tiny",
                                            "converter:my-wam.release"]
    assert wamzoo.list_components("my-wam*") == ["scheduler:my-wam.fm"]
    from wamzoo.recipes import compose, find_recipe, list_recipes

    assert "my-wam" in list_recipes("my-*") and find_recipe("base/size").name == "size.yaml"
    assert compose("my-wam").name == "my-wam"


def test_published_names_keep_loading():
    """The names the README, the model cards and older pages use resolve through the one registry."""
    from wamzoo.hub import resolve

    for name in ("fast-wam/mw-easy-small", "x-wam/mw-easy-small", "aha-wam/mw-easy-small", "harmo-wam/mw-easy-small",
                 "lerobot/fastwam_base", "fast-wam/libero-2cam224", "x-wam/robotwin", "aha-wam/robotwin"):
        spec = resolve(name)
        assert spec.name == name.replace("/", ".")
    assert resolve("lerobot/fastwam_base").repo_id == "lerobot/fastwam_base"  # the Hub id itself is unchanged
    from wamzoo.recipes import find_recipe

    for recipe in ("tiny-mot", "mw-tiny", "fast-wam", "x-wam", "aha-wam", "harmo-wam", "fast-wam-tiny"):
        assert find_recipe(recipe).suffix == ".yaml"


def test_a_slash_spelled_pretrained_name_loads():
    policy = wamzoo.load("fast-wam/mw-easy-small")
    assert policy.info.action_dim == 4 and not policy.training
