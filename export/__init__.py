"""dreamgym.export: the training side. Torch model families, real data, one training loop, ONNX export,
measurement and the model card.

Needs the ``export`` extra (torch, onnx, the source environments)::

    pip install "dreamgym[export,cpu]"

The rooms, top to bottom (a room imports only the rooms below it; tests/test_layers.py holds the contract):

- ``commands``: ``dreamgym train`` and ``dreamgym evaluate``; ``testing`` (``check_family``) and ``rllib``
- ``train/``: ``fit``, the one training loop, and ``recipes/``, one per shipped bundle
- ``measure/``: one evaluator per kind of dream (``vector``, ``token``, ``genie``, ``joint``, with ``pong``'s game
  measures), ``transfer``, and ``report`` (figures into a bundle)
- ``card``: the model card, rendered from the manifest (each evaluator writes its own sections)
- ``exporter`` (ONNX graphs, bundles) beside ``data/`` (collectors, real-env sources, episode files, Minari,
  the policy search, the mpe2 scene)
- ``families/``: one module per family, the shared layers, RetNet and the tokenizers; ``flops``
"""
