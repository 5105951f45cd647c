"""The learned attacker: a generator of fake profiles trained against a discriminator and a surrogate recommender.

Pure core (torch, numpy, the fraud detector and the project's BPR); MLflow only in `tracking.py`,
click only in `main.py`. `generate_attack` is the one call other rooms need (the gate's red team).
"""
