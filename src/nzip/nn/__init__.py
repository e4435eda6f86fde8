"""The neural byte model: integer inference engine, weights, and (with PyTorch) training."""
