"""Notebook 09's exercises (GPT-2's weights): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations


import torch

from ..model import GPTModel
from ..loading.hf_gpt2 import hf_to_gptbook_state_dict
from .spec import Answer, Case, Exercise, Mistake
from ._common import _GPT_CFG

EXERCISES: list[Exercise] = []


def _ref_ours_to_hf(model):
    cfg, sd = model.cfg, model.state_dict()
    d = cfg["emb_dim"]
    hf = {"wte.weight": sd["tok_emb.weight"], "wpe.weight": sd["pos_emb.weight"]}
    for i in range(cfg["n_layers"]):
        h, o = f"h.{i}.", f"trf_blocks.{i}."
        zeros = torch.zeros(d)
        hf[h + "ln_1.weight"], hf[h + "ln_1.bias"] = sd[o + "norm1.scale"], sd[o + "norm1.shift"]
        hf[h + "attn.c_attn.weight"] = torch.cat([sd[o + f"att.{n}.weight"].T for n in ("W_query", "W_key", "W_value")], 1)
        hf[h + "attn.c_attn.bias"] = torch.cat([sd.get(o + f"att.{n}.bias", zeros) for n in ("W_query", "W_key", "W_value")])
        hf[h + "attn.c_proj.weight"], hf[h + "attn.c_proj.bias"] = sd[o + "att.out_proj.weight"].T, sd[o + "att.out_proj.bias"]
        hf[h + "ln_2.weight"], hf[h + "ln_2.bias"] = sd[o + "norm2.scale"], sd[o + "norm2.shift"]
        hf[h + "mlp.c_fc.weight"], hf[h + "mlp.c_fc.bias"] = sd[o + "ff.layers.0.weight"].T, sd[o + "ff.layers.0.bias"]
        hf[h + "mlp.c_proj.weight"], hf[h + "mlp.c_proj.bias"] = sd[o + "ff.layers.2.weight"].T, sd[o + "ff.layers.2.bias"]
    hf["ln_f.weight"], hf["ln_f.bias"] = sd["final_norm.scale"], sd["final_norm.shift"]
    return {name: t.contiguous() for name, t in hf.items()}


_HF_CFG = {**_GPT_CFG, "qkv_bias": True, "tie_weights": True}


def _hf_model(seed, cfg=_HF_CFG):
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", "shift", "scale")):
                p.copy_(torch.randn(p.shape, generator=gen))
    return model


def _hf_cases():
    return [Case(label, lambda a=a: (_ref_ours_to_hf(_hf_model(a[0], a[1])), a[1])) for label, a in [
        ("2 layers", (1, _HF_CFG)), ("1 layer", (2, {**_HF_CFG, "n_layers": 1})),
        ("another seed, 3 layers, 8 heads", (3, {**_HF_CFG, "n_layers": 3, "n_heads": 8}))]]


def _hf_variant(fault):
    def convert(hf, cfg):
        sd = hf_to_gptbook_state_dict(hf, cfg)
        d = cfg["emb_dim"]
        for i in range(cfg["n_layers"]):
            h, o = f"h.{i}.", f"trf_blocks.{i}."
            if fault == "c_proj":
                sd[o + "att.out_proj.weight"] = hf[h + "attn.c_proj.weight"]
            if fault == "qkv_order":
                w = hf[h + "attn.c_attn.weight"]
                sd[o + "att.W_query.weight"], sd[o + "att.W_key.weight"] = w[:, d:2 * d].T, w[:, :d].T
            if fault == "c_fc":
                sd[o + "ff.layers.0.weight"] = hf[h + "mlp.c_fc.weight"]
            if fault == "split_dim0":
                w = hf[h + "attn.c_attn.weight"].T  # (3d, d): transposed first, then split the wrong way
                sd[o + "att.W_query.weight"], sd[o + "att.W_key.weight"], sd[o + "att.W_value.weight"] = \
                    w.reshape(d, 3, d).unbind(1)
            if fault == "bias_order":
                bq, bk, _ = hf[h + "attn.c_attn.bias"].split(d)
                sd[o + "att.W_query.bias"], sd[o + "att.W_key.bias"] = bk, bq
            if fault == "chunk":  # valid
                ws = torch.chunk(hf[h + "attn.c_attn.weight"], 3, dim=1)
                for name, w in zip(("W_query", "W_key", "W_value"), ws):
                    sd[o + f"att.{name}.weight"] = w.t()
        return sd
    return convert


EXERCISES.append(Exercise(
    id="09.1", title="Hugging Face names to ours", name="hf_to_ours",
    expects="a function hf_to_ours(hf_state, cfg) that turns a GPT-2 state dict (Hugging Face names, Conv1D "
            "layout) into a state dict for GPTModel(cfg)",
    kind="function", reference=hf_to_gptbook_state_dict, cases=_hf_cases,
    hints=["Rename every tensor; split c_attn into query, key and value; transpose the four Conv1D matrices "
           "(c_attn, attn.c_proj, c_fc, mlp.c_proj), which are stored (in, out).",
           "w_q, w_k, w_v = hf[h + 'attn.c_attn.weight'].split(d, dim=1), each transposed (.T). attn.c_proj is "
           "square: forgetting its .T raises no error. With tie_weights the output head needs no tensor."],
    solution="def hf_to_ours(hf, cfg):\n"
             "    sd = {'tok_emb.weight': hf['wte.weight'], 'pos_emb.weight': hf['wpe.weight']}\n"
             "    d = cfg['emb_dim']\n"
             "    for i in range(cfg['n_layers']):\n"
             "        h, o = f'h.{i}.', f'trf_blocks.{i}.'\n"
             "        sd[o + 'norm1.scale'], sd[o + 'norm1.shift'] = hf[h + 'ln_1.weight'], hf[h + 'ln_1.bias']\n"
             "        sd[o + 'norm2.scale'], sd[o + 'norm2.shift'] = hf[h + 'ln_2.weight'], hf[h + 'ln_2.bias']\n"
             "        ws = hf[h + 'attn.c_attn.weight'].split(d, dim=1)\n"
             "        bs = hf[h + 'attn.c_attn.bias'].split(d)\n"
             "        for name, w, b in zip(('W_query', 'W_key', 'W_value'), ws, bs):\n"
             "            sd[o + f'att.{name}.weight'], sd[o + f'att.{name}.bias'] = w.T, b\n"
             "        sd[o + 'att.out_proj.weight'] = hf[h + 'attn.c_proj.weight'].T\n"
             "        sd[o + 'att.out_proj.bias'] = hf[h + 'attn.c_proj.bias']\n"
             "        sd[o + 'ff.layers.0.weight'], sd[o + 'ff.layers.0.bias'] = hf[h + 'mlp.c_fc.weight'].T, hf[h + 'mlp.c_fc.bias']\n"
             "        sd[o + 'ff.layers.2.weight'], sd[o + 'ff.layers.2.bias'] = hf[h + 'mlp.c_proj.weight'].T, hf[h + 'mlp.c_proj.bias']\n"
             "    sd['final_norm.scale'], sd['final_norm.shift'] = hf['ln_f.weight'], hf['ln_f.bias']\n"
             "    return sd",
    mistakes=[
        Mistake("attn.c_proj.weight is not transposed",
                "Conv1D stores (in, out); nn.Linear wants (out, in). c_proj is square, so no shape check notices: "
                "transpose it with .T like the others.",
                answer=_hf_variant("c_proj")),
        Mistake("query and key are swapped when splitting c_attn",
                "c_attn holds [query | key | value] along dim 1, in that order.",
                answer=_hf_variant("qkv_order")),
    ],
    wrong_answers=[
        Answer("c_fc not transposed", _hf_variant("c_fc")),
        Answer("c_attn split along dim 0", _hf_variant("split_dim0")),
        Answer("the biases of query and key swapped", _hf_variant("bias_order")),
    ],
    variants=[
        Answer("torch.chunk and .t()", _hf_variant("chunk")),
        Answer("gptbook.hf_to_gptbook_state_dict", hf_to_gptbook_state_dict),
    ],
))


def _ours_cases():
    return [Case(label, lambda a=a: (_hf_model(a[0], a[1]),)) for label, a in [
        ("2 layers", (4, _HF_CFG)), ("1 layer", (5, {**_HF_CFG, "n_layers": 1})),
        ("no qkv bias (biases written as zeros)", (6, {**_HF_CFG, "qkv_bias": False}))]]


def _ours_variant(fault):
    def convert(model):
        hf = _ref_ours_to_hf(model)
        sd = model.state_dict()
        for i in range(model.cfg["n_layers"]):
            h, o = f"h.{i}.", f"trf_blocks.{i}."
            if fault == "no_transpose":
                hf[h + "attn.c_proj.weight"] = sd[o + "att.out_proj.weight"]
                hf[h + "mlp.c_fc.weight"] = sd[o + "ff.layers.0.weight"]
                hf[h + "mlp.c_proj.weight"] = sd[o + "ff.layers.2.weight"]
            if fault == "cat_dim0":
                hf[h + "attn.c_attn.weight"] = torch.cat(
                    [sd[o + f"att.{n}.weight"] for n in ("W_query", "W_key", "W_value")], 0)
            if fault == "no_zero_bias" and not model.cfg["qkv_bias"]:
                del hf[h + "attn.c_attn.bias"]
            if fault == "c_proj":
                hf[h + "attn.c_proj.weight"] = sd[o + "att.out_proj.weight"]
            if fault == "kv_order":
                hf[h + "attn.c_attn.weight"] = torch.cat(
                    [sd[o + f"att.{n}.weight"].T for n in ("W_query", "W_value", "W_key")], 1)
            if fault == "hstack":  # valid
                hf[h + "attn.c_attn.weight"] = torch.hstack(
                    [sd[o + f"att.{n}.weight"].t() for n in ("W_query", "W_key", "W_value")])
        if fault == "not_contiguous":  # valid
            hf = {name: t.T.contiguous().T if t.dim() == 2 else t for name, t in hf.items()}
        return hf
    return convert


EXERCISES.append(Exercise(
    id="09.2", title="Our names to Hugging Face's", name="ours_to_hf",
    expects="a function ours_to_hf(model) that turns a GPTModel into a GPT-2 state dict with Hugging Face's "
            "names and layout",
    kind="function", reference=_ref_ours_to_hf, cases=_ours_cases,
    hints=["The inverse of hf_to_ours: rename, concatenate query, key and value into c_attn, transpose the four "
           "matrices back to (in, out).",
           "c_attn.weight = torch.cat([W_query.T, W_key.T, W_value.T], dim=1), shape (d, 3d); without qkv biases "
           "write torch.zeros(d) for each."],
    solution="def ours_to_hf(model):  # the solution of notebook 09's exercise 3\n"
             "    cfg, sd = model.cfg, model.state_dict()\n"
             "    hf = {'wte.weight': sd['tok_emb.weight'], 'wpe.weight': sd['pos_emb.weight']}\n"
             "    for i in range(cfg['n_layers']):\n"
             "        h, o = f'h.{i}.', f'trf_blocks.{i}.'\n"
             "        zeros = torch.zeros(cfg['emb_dim'])\n"
             "        hf[h + 'ln_1.weight'], hf[h + 'ln_1.bias'] = sd[o + 'norm1.scale'], sd[o + 'norm1.shift']\n"
             "        hf[h + 'attn.c_attn.weight'] = torch.cat(\n"
             "            [sd[o + f'att.{n}.weight'].T for n in ('W_query', 'W_key', 'W_value')], dim=1)\n"
             "        hf[h + 'attn.c_attn.bias'] = torch.cat(\n"
             "            [sd.get(o + f'att.{n}.bias', zeros) for n in ('W_query', 'W_key', 'W_value')])\n"
             "        hf[h + 'attn.c_proj.weight'], hf[h + 'attn.c_proj.bias'] = sd[o + 'att.out_proj.weight'].T, sd[o + 'att.out_proj.bias']\n"
             "        hf[h + 'ln_2.weight'], hf[h + 'ln_2.bias'] = sd[o + 'norm2.scale'], sd[o + 'norm2.shift']\n"
             "        hf[h + 'mlp.c_fc.weight'], hf[h + 'mlp.c_fc.bias'] = sd[o + 'ff.layers.0.weight'].T, sd[o + 'ff.layers.0.bias']\n"
             "        hf[h + 'mlp.c_proj.weight'], hf[h + 'mlp.c_proj.bias'] = sd[o + 'ff.layers.2.weight'].T, sd[o + 'ff.layers.2.bias']\n"
             "    hf['ln_f.weight'], hf['ln_f.bias'] = sd['final_norm.scale'], sd['final_norm.shift']\n"
             "    return {name: t.contiguous() for name, t in hf.items()}",
    mistakes=[
        Mistake("the matrices are not transposed back",
                "Hugging Face's Conv1D stores (in, out): write each nn.Linear weight as weight.T.",
                answer=_ours_variant("no_transpose")),
        Mistake("query, key and value are stacked along dim 0",
                "c_attn.weight is (d, 3d): concatenate the transposed (d, d) matrices along dim=1.",
                answer=_ours_variant("cat_dim0")),
    ],
    wrong_answers=[
        Answer("no zero biases without qkv_bias", _ours_variant("no_zero_bias")),
        Answer("only attn.c_proj left untransposed", _ours_variant("c_proj")),
        Answer("key and value swapped in c_attn", _ours_variant("kv_order")),
    ],
    variants=[
        Answer("torch.hstack and .t()", _ours_variant("hstack")),
        Answer("not made contiguous", _ours_variant("not_contiguous")),
    ],
))
