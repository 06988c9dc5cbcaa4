"""Building blocks shared by the IMF parts: equalized-lr layers, modulated convs, res blocks, attention."""
