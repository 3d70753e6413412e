"""Networks: Stage I DCGAN (masks from noise) and Stage II pix2pix (mask to image)."""
