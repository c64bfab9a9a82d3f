"""Reading the files people have: lazy tensor files, diffusers folders, key conversion, and load_model."""
