"""Which model a name means (``gptbook.loading.source``), the same rule for ``gptbook generate`` and
``GPTModel.from_pretrained``; and the one checked state-dict load (``gptbook.loading.state``)."""

import pytest
import torch

from conftest import MINI_CONFIG
from gptbook import GPTModel, save_checkpoint
from gptbook.loading.source import locate_model
from gptbook.loading.state import check_state_dict


def test_a_folder_is_a_gptbook_checkpoint_or_hugging_face_weights(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ours", GPTModel(MINI_CONFIG))
    assert locate_model(tmp_path / "ours").kind == "checkpoint"
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert locate_model(tmp_path / "hf").kind == "hf-folder"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no model"):
        locate_model(tmp_path / "empty")


def test_hub_ids_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert locate_model("gpt2") == locate_model("hf:gpt2")
    assert locate_model("hf:openai-community/gpt2").where == "openai-community/gpt2"
    assert locate_model("openai-community/gpt2").kind == "hub"  # Python: as Hugging Face's own from_pretrained
    with pytest.raises(ValueError, match="write hf:openai-community/gpt2"):  # the command line asks
        locate_model("openai-community/gpt2", slash_hub_ids=False)
    with pytest.raises(ValueError, match="no such checkpoint folder"):
        locate_model("./runs/nope")


def test_from_pretrained_on_a_gptbook_checkpoint_says_what_to_call(tmp_path):
    save_checkpoint(tmp_path / "ours", GPTModel(MINI_CONFIG))
    with pytest.raises(ValueError, match="load_checkpoint"):
        GPTModel.from_pretrained(tmp_path / "ours")


def test_one_checked_load_names_the_tensor_and_the_fix():
    model = GPTModel(MINI_CONFIG)
    state = model.state_dict()
    state["final_norm.scale"] = torch.ones(3)
    with pytest.raises(ValueError, match=r"final_norm.scale.*\(3,\).*\(32,\).*rebuild it"):
        check_state_dict(model, state, fix="rebuild it")

    class Refused(Exception):
        pass

    with pytest.raises(Refused, match="does not know"):
        check_state_dict(model, {**model.state_dict(), "extra": torch.ones(1)}, error=Refused)


def test_a_checked_load_names_the_tensor_and_ends_with_what_to_do():
    from gptbook.loading.state import BUILD_WITH_ITS_CONFIG, load_state_dict_checked

    model = torch.nn.Linear(2, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrong = {"weight": torch.zeros(3, 3), "bias": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"'weight' has shape \(3, 3\) .* \(3, 2\) in the model; " + BUILD_WITH_ITS_CONFIG):
        load_state_dict_checked(model, wrong)
    with pytest.raises(ValueError, match="; load the other folder$"):
        load_state_dict_checked(model, wrong, fix="load the other folder")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing was copied
