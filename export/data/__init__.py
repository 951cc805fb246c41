"""Real data: the real environments behind bundles (``sources``), collectors of episodes from them
(``collect`` for Gymnasium / MuJoCo, ``atari`` for ALE Pong and Breakout, ``mpe`` for mpe2 simple_tag), episode
files and Minari datasets (``episodes``), and the policy search that gives data of rising skill (``ars``)."""
