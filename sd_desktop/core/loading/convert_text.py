"""OpenCLIP text towers (SD 2.x's ViT-H, SDXL's ViT-bigG, as their single files keep them) in our naming.

OpenCLIP fuses each layer's query, key and value into one `in_proj_weight` [3w, w] (and bias), stores the
projection as a matrix applied on the right (`text_projection` [w, p]: pooled @ P), and names the rest its own
way. `openclip_plan` maps our keys (transformers' `CLIPTextModel` names) to where each lives in the file and how
to cut it out, from the keys and shapes alone; `read_planned` reads one tensor by that plan.
"""

from __future__ import annotations

import re

import torch

from ..families import Shapes

# (key in our naming, its source key, how to take it: None = as it is, 0/1/2 = that third of a fused tensor,
# "T" = transposed)
Plan = dict[str, tuple[str, int | str | None]]

_LAYER = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)")
_LAYER_NAMES = {
    "ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
}
_FUSED = {"attn.in_proj_weight": "weight", "attn.in_proj_bias": "bias"}
_TOP = {"token_embedding.weight": "embeddings.token_embedding.weight",
        "positional_embedding": "embeddings.position_embedding.weight",
        "ln_final.weight": "final_layer_norm.weight", "ln_final.bias": "final_layer_norm.bias"}
_IGNORED = ("logit_scale", "attn_mask")  # CLIP's contrastive temperature; a buffer some exports kept


def openclip_plan(keys: dict[str, str]) -> Plan:
    """{OpenCLIP key without the tower's prefix: full key} -> a plan; keys it does not know are kept as they
    are (the loader then names them when the layout does not fit)."""
    plan: Plan = {}
    for short, full in keys.items():
        if short in _IGNORED:
            continue
        if short in _TOP:
            plan[_TOP[short]] = (full, None)
        elif short == "text_projection":
            plan["text_projection.weight"] = (full, "T")
        elif (match := _LAYER.fullmatch(short)) is not None:
            index, rest = match.groups()
            ours = f"encoder.layers.{index}."
            if rest in _FUSED:
                for part, name in enumerate(("q_proj", "k_proj", "v_proj")):
                    plan[f"{ours}self_attn.{name}.{_FUSED[rest]}"] = (full, part)
            else:
                head, _, leaf = rest.rpartition(".")
                plan[ours + f"{_LAYER_NAMES.get(head, head)}.{leaf}"] = (full, None)
        else:
            plan[short] = (full, None)
    return plan


def planned_shapes(plan: Plan, shapes: Shapes) -> Shapes:
    out = {}
    for ours, (full, how) in plan.items():
        shape = tuple(shapes[full])
        if how == "T":
            shape = shape[::-1]
        elif isinstance(how, int):
            shape = (shape[0] // 3, *shape[1:])
        out[ours] = shape
    return out


def read_planned(tensor: torch.Tensor, how: int | str | None) -> torch.Tensor:
    if how == "T":
        return tensor.t().contiguous()
    if isinstance(how, int):
        return tensor.chunk(3, dim=0)[how].contiguous()
    return tensor
