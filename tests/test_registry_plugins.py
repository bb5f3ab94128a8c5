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
from wamzoo.registry import ConfigError, DuplicateNameError, Registry, UnknownNameError


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
