"""A minimal GPT: typed configs and the size ladder, the model, FLOP counts, trainer, evaluator."""
