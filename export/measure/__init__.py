"""Measuring dreams against reality: ``fidelity`` (what every evaluator shares: open-loop windows, error per
horizon against copy-last, PSNR, the plot), one evaluator per kind of dream (``vector``, ``token``, ``genie``,
``joint``; a family names its own), a game's own measures (``pong``), ``transfer`` (a learner trained only in
the dream, scored in reality) and ``report`` (the figures into a bundle's manifest and card)."""
