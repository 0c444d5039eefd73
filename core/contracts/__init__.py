"""The contracts of the component kinds: one module per kind, each an abstract base class with fixed
signatures and documented shapes. Components subclass these; the assembled model and the trainer talk
to components only through them, so they never branch on a component's type.

These modules import torch; the registry and config machinery never import them.
"""
