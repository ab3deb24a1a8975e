"""Sort-of-CLEVR-NL: the generator with ground truth, batches, attention supervision, evaluation (one region rule)."""
