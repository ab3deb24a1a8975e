"""Sort-of-CLEVR-NL and your own data (a manifest): what a task supplies to the model and the training loop."""
