"""What a request runs through: generate (txt2img, img2img, inpainting) and interpolation."""
