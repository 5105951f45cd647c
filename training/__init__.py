"""Training side of advrec: datasets, models, adversarial training, evaluation, the trainer loop."""
