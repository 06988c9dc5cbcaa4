"""Training IMF: the paper's losses, GAN, EMA, AMP, resume and DDP (DESIGN §1 training paragraph)."""
