"""How the networks run on this machine: devices and precision, the CPU allocator, oneDNN packing, VAE
tiling with the float16 guard, and per-step previews."""
