"""LoRAs and embeddings in the window: the panel lists what the folders beside the models folder hold, inserts
tags into the prompt, `<lora:` completes names, and a generation with a tag uses the LoRA (resolved on the
worker thread) and records it."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt
from safetensors.torch import save_file

from fake_engine import image_array, make_window, output_pngs
from test_lora import kohya_lora
from tiny_models import tiny_parts


def folders_with_addons(root, tiny_model):
    """A1111's layout: models/Stable-diffusion (the models folder), models/Lora, embeddings/."""
    checkpoints = root / "models" / "Stable-diffusion"
    checkpoints.mkdir(parents=True)
    (root / "models" / "Lora").mkdir()
    (root / "embeddings").mkdir()
    save_file(kohya_lora(tiny_parts(), seed=3), str(root / "models" / "Lora" / "ink.safetensors"),
              metadata={"ss_base_model_version": "sd_v1",
                        "ss_tag_frequency": '{"set": {"ink wash": 40, "monochrome": 12}}'})
    torch.save({"string_to_param": {"*": torch.randn(2, 64, generator=torch.Generator().manual_seed(1))}},
               root / "embeddings" / "glowy.pt")
    return checkpoints


def wait_for_addons(qtbot, window, count):
    qtbot.waitUntil(lambda: len(window.state.addons.entries) == count, timeout=10000)


def test_the_panel_lists_searches_and_inserts(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.state.preferences.models_folders = [str(folders_with_addons(tmp_path, tiny_model))]
    window.state.refresh_models()
    wait_for_addons(qtbot, window, 2)
    panel = window.addons
    labels = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert labels == ["ink\nLoRA · SD 1.x · 257 KB", "glowy\nEmbedding · 2 KB"]  # (64 wide: no family of ours)
    assert "2 vectors: takes 2 tokens of a prompt" in panel.list.item(1).toolTip()
    assert "Trained on: ink wash, monochrome" in panel.list.item(0).toolTip()
    panel.search.setText("mono")  # a trigger word finds its LoRA
    assert panel.list.count() == 1
    panel.search.clear()

    qtbot.waitUntil(lambda: panel.model_addons == "sd1", timeout=30000)  # the tiny model is SD 1.x
    save_file(kohya_lora(tiny_parts(), seed=4), str(tmp_path / "models" / "Lora" / "xl_style.safetensors"),
              metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    window.state.refresh_models()
    wait_for_addons(qtbot, window, 3)
    item = panel.list.item(1)
    assert item.text() == "xl_style\nLoRA · SDXL · 257 KB"  # listed, dimmed, and the tooltip says why
    assert "The loaded model takes SD 1.x LoRAs: this one would be refused" in item.toolTip()
    assert item.foreground().color() != panel.list.item(0).foreground().color()

    window.prompt_edit.setPlainText("a red circle")
    panel.list.setCurrentRow(0)
    panel.set_model({"addons": "sd1"})  # a model (re)loaded: the list is redrawn, the selection kept
    assert panel.selected().name == "ink"
    panel.weight_slider.setValue(13)  # the slider, in twentieths, moves the spin box
    assert panel.weight_spin.value() == 0.65
    qtbot.mouseClick(panel.insert_button, Qt.MouseButton.LeftButton)
    panel.list.setCurrentRow(2)
    panel.insert_selected()
    assert window.state.generation.prompt == "a red circle <lora:ink:0.65> glowy"
    window.parameters.emphasis_combo.setCurrentIndex(window.parameters.emphasis_combo.findData("ComfyUI"))
    window.prompt_edit.setPlainText("a kite")
    panel.insert_selected()  # ComfyUI reads a bare word as a word: its own form
    assert window.state.generation.prompt == "a kite embedding:glowy"


def test_typing_a_lora_tag_offers_the_names(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.state.preferences.models_folders = [str(folders_with_addons(tmp_path, tiny_model))]
    window.state.refresh_models()
    wait_for_addons(qtbot, window, 2)
    window.activateWindow()
    window.prompt_edit.setFocus()
    window.prompt_edit.setPlainText("")
    qtbot.keyClicks(window.prompt_edit, "a cat <lora:i")
    completer = window.prompt_edit._completer
    qtbot.waitUntil(lambda: completer.popup().isVisible(), timeout=5000)
    assert completer.currentCompletion() == "ink"
    completer.activated.emit("ink")
    assert window.prompt_edit.toPlainText() == "a cat <lora:ink:1>"


def test_a_generation_with_a_tag_uses_the_lora_and_records_it(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.state.preferences.models_folders = [str(folders_with_addons(tmp_path, tiny_model))]
    window.parameters.steps_spin.setValue(2)
    window.parameters.seed_spin.set_bound_value(5)
    window.prompt_edit.setPlainText("a red circle")
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    qtbot.waitUntil(lambda: not window.state.session.busy, timeout=30000)
    window.prompt_edit.setPlainText("a red circle <lora:ink:1> glowy")
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 2, timeout=30000)
    plain, with_addons = sorted(output_pngs(window))
    assert not np.array_equal(image_array(plain), image_array(with_addons))
    from sd_desktop.core import read_parameters
    from sd_desktop.core.io.image_text import text_chunks

    request = read_parameters(with_addons)["request"]
    assert request["loras"] == [{"path": str(tmp_path / "models" / "Lora" / "ink.safetensors"), "weight": 1.0,
                                 "text_weight": None}]
    assert request["embeddings"] == [["glowy", str(tmp_path / "embeddings" / "glowy.pt")]]

    infotext = text_chunks(with_addons)["parameters"]
    assert infotext.startswith("a red circle <lora:ink:1> glowy\n")
    assert 'Lora hashes: "ink: ' in infotext and 'TI hashes: "glowy: ' in infotext

    qtbot.waitUntil(lambda: not window.state.session.busy, timeout=30000)  # (results arrive before the job ends)
    window.prompt_edit.setPlainText("a red circle <lora:gone:1>")
    window.generate_button.click()
    qtbot.waitUntil(lambda: "LoRA 'gone' is not in the LoRA folders" in window.message_bar.text(), timeout=30000)
    assert window.history_list.count() == 2  # nothing was made


def test_restoring_finds_a_renamed_lora_by_its_hash_once_the_folders_are_hashed(qtbot, tiny_model, tmp_path):
    """An A1111 image made with "ink_wash" whose file is ink.safetensors here: the catalogue hashes the folder
    in the background (and keeps the hashes beside the settings), and the restore rewrites the tag."""
    from sd_desktop.core.io.infotext import a1111_parameters
    from sd_desktop.core.lora import hashes
    from test_lora import after_header_hash

    window = make_window(qtbot, tiny_model)
    models = folders_with_addons(tmp_path, tiny_model)
    ink = tmp_path / "models" / "Lora" / "ink.safetensors"
    params = a1111_parameters(f'a kite <lora:ink_wash:0.8>\nSteps: 3, Seed: 9, Size: 64x64, '
                              f'Lora hashes: "ink_wash: {after_header_hash(ink)}"')
    hashes._CACHE.clear()
    window.state.preferences.models_folders = [str(models)]
    window.state.refresh_models()
    qtbot.waitUntil(lambda: not window.state.addons.hashing, timeout=10000)
    cache = window.state.addons.hash_cache
    assert cache and hashes.known("lora", ink) == after_header_hash(ink)
    window.state.restore_parameters(params)
    assert window.state.generation.prompt == "a kite <lora:ink:0.8>"
    assert "LoRA ink_wash, found by its hash as ink." in window.message_bar.text() + window.statusBar().currentMessage()

    hashes._CACHE.clear()  # a new start: the hashes come from the file, not from reading the LoRAs again
    hashes.load_cache(cache)
    assert hashes.known("lora", ink) == after_header_hash(ink)


def test_the_token_counter_skips_lora_tags_and_counts_an_embedding_as_its_vectors(qtbot, tiny_model, tmp_path):
    """As A1111's counter: a <lora:...> tag is no text, and glowy is its 2 vectors, which never straddle a
    chunk: after 74 words they open the second chunk, the first padded to 75 (77/150, as the encoder will)."""
    from sd_desktop.core.text.embeddings import embedding_set, read_embedding
    from sd_desktop.core.text.prompts import a1111_chunks
    from sd_desktop.core.text.tokenizer import CLIPTokenizer

    window = make_window(qtbot, tiny_model)
    window.state.preferences.models_folders = [str(folders_with_addons(tmp_path, tiny_model))]
    window.state.refresh_models()
    wait_for_addons(qtbot, window, 2)
    assert [entry.vectors for entry in window.state.addons.entries] == [None, 2]
    counter = window.prompt_panel.prompt_count
    window.prompt_edit.setPlainText("a cat <lora:ink:0.8> <lora:ink_wash_v2:1>")
    qtbot.waitUntil(lambda: counter.text() == "2/75", timeout=5000)
    prompt = "a " * 74 + "glowy"
    window.prompt_edit.setPlainText(prompt)
    qtbot.waitUntil(lambda: counter.text() == "77/150", timeout=5000)
    tokenizer = CLIPTokenizer.default()
    encoded = embedding_set(tokenizer, {"clip": 64}, 49408, [("glowy", read_embedding(tmp_path / "embeddings" / "glowy.pt"))])
    chunks, used = a1111_chunks(tokenizer, prompt, embeddings=encoded)  # what generation will encode
    assert (used, len(chunks)) == (77, 2)
    window.prompt_edit.setPlainText("a " * 73 + "glowy")  # fits: one chunk
    qtbot.waitUntil(lambda: counter.text() == "75/75", timeout=5000)
