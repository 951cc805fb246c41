"""dreamgym.play: the pygame front end (extra: play). See issue-tracked work; the runtime never imports it."""
