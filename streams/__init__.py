"""Streaming side of advrec: the Faust app, its agents, profiles, fraud detection, windows, scorer.

Importing this package must stay cheap: it imports neither faust nor torch; modules that need
them import them themselves.
"""
