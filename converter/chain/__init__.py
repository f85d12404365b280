"""The self-evolving chain: rounds of self-sampling, confidence labels, LoRA SFT and merging.

- ``context``: the work folder's layout, manifests, the bench step given (a leaf).
- ``steps``: one function per step of a round; ``runner``: :class:`Chain` runs and resumes them.
- ``sampling``: labels from the model's own samples; ``teacher``: from an endpoint.
- ``report``: the chain report; ``build``: a round's GGUF from the published adapters.

The settings are ``converter.train_config.ChainConfig``. Nothing is imported here, so reading
one module (e.g. ``build``) does not load the others.
"""
