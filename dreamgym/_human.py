"""render_mode="human": a plain pygame window showing the frames, imported only when asked for."""

from __future__ import annotations

import numpy as np

from .errors import DependencyNotInstalled
from .video import tile

_windows: dict[int, tuple] = {}


def show(env, frames: np.ndarray, scale: int = 6) -> None:
    try:
        import pygame
    except ImportError as e:
        raise DependencyNotInstalled(
            'render_mode="human" needs pygame; run `pip install "dreamgym[play]"` (it installs pygame-ce)'
        ) from e
    img = tile(frames[:16], pad=0)
    size = (img.shape[1] * scale, img.shape[0] * scale)
    if id(env) not in _windows:
        pygame.display.init()  # no audio device needed
        _windows[id(env)] = (pygame.display.set_mode(size), pygame.time.Clock())
    screen, clock = _windows[id(env)]
    surf = pygame.surfarray.make_surface(img.swapaxes(0, 1))
    screen.blit(pygame.transform.scale(surf, size), (0, 0))
    pygame.event.pump()
    pygame.display.flip()
    clock.tick(env.metadata["render_fps"])


def close(env) -> None:
    if id(env) in _windows:
        import pygame

        pygame.display.quit()
        del _windows[id(env)]
