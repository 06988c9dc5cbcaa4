"""Training IMF: the paper's losses, GAN, EMA, AMP, resume and DDP."""
