"""The paper's extraction recipe: activations → difference of means → denoise → unit directions.

`emolab build-pack` drives it over a generated story corpus; tests drive it on a few texts.
"""
