"""Training the pair models on segment-swapping pairs."""
