"""LoRA and LyCORIS networks on top of a checkpoint: read the files people download (files.py), find the
layers they adapt in our networks (targets.py), and add them to those layers without touching the base
weights, so taking them off restores the model exactly (apply.py)."""
