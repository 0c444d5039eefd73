"""Model building blocks shared by components: attention layers, geometry tokens, the block stack."""
