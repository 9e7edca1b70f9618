"""Chapters declare themselves (entry points -> common.registry.Chapter); the library derives from them."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import checkpoints, registry, upscale_cli
from common.images import write_image
from tests.common.test_checkpoints import POST_META, tiny_post

REPO = Path(__file__).resolve().parents[2]


def test_installed_chapters_declare_their_architectures_and_defaults():
    found = registry.chapters()
    assert {"srcnn", "srgan", "esrgan"} <= set(found)
    for name, spec in found.items():
        assert spec.name == name and spec.display_name
        for arch in spec.architectures:
            assert callable(registry.get_builder(arch))
            assert registry.chapter_of(arch) is spec
    assert found["srgan"].generators == ("srresnet",)
    assert found["esrgan"].generators == ("rrdb_generator", "srvgg_compact")
    assert registry.architecture("srgan_discriminator").role == "discriminator"
    assert registry.ARCHITECTURES["srresnet"] == "srgan.models:srresnet"  # the view of the old table
    assert registry.weight_sources() == {"krasserm": "srgan.krasserm:load_krasserm"}
    assert registry.foreign_loaders() == ("srcnn.thesis:load_thesis_checkpoint",)
    # the shipped weights the upscale commands default to
    assert found["srcnn"].default_weights(2) == REPO / "srcnn" / "weights" / "srcnn_x2.h5"
    assert found["srgan"].default_weights() == REPO / "srgan" / "weights" / "srgan_x4.h5"
    # not esrgan_x4.h5: its false colour on Set14 is above krasserm's SRGAN's
    assert found["esrgan"].default_weights().name == "esrgan_interp_x4.h5"
    with pytest.raises(registry.UnknownChapter, match="unknown chapter 'nope'"):
        registry.chapter("nope")


def test_run_directories_come_from_the_chapters():
    srcnn, srgan, esrgan = (registry.chapter(n) for n in ("srcnn", "srgan", "esrgan"))
    assert srcnn.run_dir("adam", srcnn.presets["adam"]) == Path("runs/srcnn_x234_adam")
    assert srgan.run_dir("srresnet-mse", srgan.presets["srresnet-mse"]) == Path("runs/srresnet-mse")
    assert srgan.run_dir("srgan-cpu", srgan.presets["srgan-cpu"]) == Path("runs/srgan-cpu-srgan-vgg54")
    assert esrgan.run_dir("gan", esrgan.presets["gan"]) == Path("runs/esrgan-gan")
    assert esrgan.run_dir("gan-cpu", esrgan.presets["gan-cpu"]) == Path("runs/esrgan-gan-cpu-gan")


def test_checkpoint_meta_follows_the_architecture_declaration():
    meta = registry.chapter("srgan").checkpoint_meta("srresnet", {"scale": 4}, 4)
    assert meta == {"architecture": "srresnet", "args": {"scale": 4}, "scale": 4, "upsampling": "post",
                    "color": "rgb", "input_range": [0, 1], "output_range": [-1, 1]}
    srcnn = registry.chapter("srcnn").checkpoint_meta("srcnn", {}, 3, color="rgb")
    assert srcnn["upsampling"] == "pre" and srcnn["color"] == "rgb"


@pytest.mark.parametrize("chapter,name", [("srcnn", "srcnn_x3"), ("srgan", "srresnet_x4"), ("esrgan", "rrdb_x4"),
                                         ("esrgan", "esrgan_interp_x4")])
def test_shipped_weights_rebuilt_from_their_json_equal_the_whole_models(chapter, name):
    """X.weights.h5 is rebuilt through the registry from the JSON's architecture name."""
    whole = REPO / chapter / "weights" / f"{name}.h5"
    model, meta = checkpoints.load_model(whole)
    rebuilt, _ = checkpoints.load_model(whole.with_name(f"{name}.weights.h5"))
    x = np.random.default_rng(0).uniform(0, 1, (1, 12, 10, model.input_shape[-1])).astype("float32")
    assert registry.chapter_of(meta["architecture"]).name == chapter
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.asarray(rebuilt(x, training=False)))


@pytest.fixture
def toy_chapter(tmp_path):
    """A chapter added at run time (as an installed one would be through its entry point)."""
    shipped = checkpoints.save_model(tiny_post(), tmp_path / "toy_x2.h5", {**POST_META, "architecture": "toy_gen"})
    disc = checkpoints.save_model(tiny_post(), tmp_path / "disc.h5", {**POST_META, "architecture": "toy_disc"})
    spec = registry.register_chapter(registry.Chapter(
        name="toy", display_name="Toy",
        architectures={"toy_gen": registry.Architecture("tests.common.test_checkpoints:tiny_post"),
                       "toy_disc": registry.Architecture("tests.common.test_checkpoints:tiny_post",
                                                         role="discriminator")},
        shipped_weights=(str(tmp_path / "toy_x{scale}.h5"),), default_scale=2))
    yield spec, shipped, disc
    registry.unregister_chapter("toy")


def test_a_registered_chapter_gets_the_upscale_command(toy_chapter, tmp_path, capsys):
    spec, shipped, disc = toy_chapter
    assert "toy_gen" in registry.names() and registry.chapter_of("toy_disc") is spec
    src = tmp_path / "a.png"
    write_image(src, np.random.default_rng(1).uniform(0, 1, (8, 6, 3)).astype("float32"))
    assert spec.upscale([str(src), "-o", str(tmp_path / "b.png"), "-q"]) == 0  # its shipped weights, x2
    assert (tmp_path / "b.png").exists()
    # a checkpoint whose JSON names the chapter's discriminator is refused in one line
    assert spec.upscale([str(src), "-o", str(tmp_path / "c.png"), "--weights", str(disc), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds a discriminator (toy_disc)" in err and not (tmp_path / "c.png").exists()
    # another chapter's generator: the command names the chapter that runs it
    srcnn = registry.chapter("srcnn").default_weights(3)
    assert upscale_cli.main([str(src), "-o", str(tmp_path / "d.png"), "--weights", str(srcnn), "-q"], chapter="toy") == 2
    assert "holds a different architecture: 'srcnn', but toy.upscale runs toy_gen (use python -m srcnn.upscale)" \
        in capsys.readouterr().err
    # --scale picks the shipped file; a missing one lists what is shipped
    assert spec.upscale([str(src), "-o", str(tmp_path / "e.png"), "--scale", "3", "-q"]) == 2
    assert "toy_x3.h5: checkpoint not found (--scale 3 given; shipped weights: x2" in capsys.readouterr().err


def _code_names(path: Path) -> list[str]:
    """Identifiers and non-docstring string constants of a module (comments and docstrings left out)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            words += [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
    return words


def test_the_library_never_names_a_chapter_in_its_code():
    """No identifier, import or key-like string of common/ names a chapter (prose is left out: help
    texts and messages may give `krasserm:srgan` as an example, as docstrings do)."""
    import re

    pattern = re.compile(r"\b(" + "|".join(map(re.escape, registry.chapters())) + r")\b")
    found = [f"{path.relative_to(REPO)}: {word!r}" for path in sorted((REPO / "common").rglob("*.py"))
             for word in _code_names(path) if pattern.search(word) and not re.search(r"\s", word)]
    assert not found, found


def test_reading_the_chapters_loads_no_tensorflow():
    code = ("import sys, json; from common import registry; "
            "n = registry.names(); registry.chapter('srgan').default_weights(); "
            "print(json.dumps([n, 'tensorflow' in sys.modules, 'keras' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    names, tf_loaded, keras_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "rrdb_generator" in names and not tf_loaded and not keras_loaded


def test_the_default_esrgan_weights_are_the_interpolation_their_json_names():
    path = registry.chapter("esrgan").default_weights()
    model, meta = checkpoints.load_model(path)
    how = meta["interpolation"]
    assert meta["stage"] == "interpolation" and 0 < how["alpha"] < 1
    psnr, _ = checkpoints.load_model(REPO / how["psnr"])
    gan, _ = checkpoints.load_model(REPO / how["gan"])
    for w, a, b in zip(model.get_weights(), psnr.get_weights(), gan.get_weights(), strict=True):
        np.testing.assert_allclose(w, (1 - how["alpha"]) * a + how["alpha"] * b, rtol=1e-6, atol=1e-7)
    measured = meta["measured"]["Set14_x4"]
    assert {"psnr", "niqe", "false_colour"} <= set(measured)
    # the reason it is the default: no more false colour than the published SRGAN
    assert measured["false_colour"] <= meta["measured"]["reference_Set14_x4"]["krasserm:srgan"]["false_colour"]
