"""dreamgym.export: torch model families, data collection, training, ONNX export and evaluation.

Needs the ``export`` extra (torch, onnx, the source environments)::

    pip install "dreamgym[export,cpu]"
"""
