"""The networks, from the architecture: U-Net, VAE, CLIP text encoder; attribute names are checkpoint keys."""
