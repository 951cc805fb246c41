"""Screenshot of the real play window under Xvfb (Debian: xvfb, x11-apps, imagemagick):
Xvfb :99 -screen 0 1280x800x24 &  DISPLAY=:99 SDL_VIDEODRIVER=x11 python docs/screenshot.py
"""

import subprocess
import time

import pygame

import dreamgym
from dreamgym.play.single import PlayApp

app = PlayApp(dreamgym.resolve("Dream-HalfCheetah-RSSM-v0"), seed=3)
app.control("tab")
for _ in range(70):
    app.frame()
    time.sleep(0.02)
win = pygame.Window.from_display_module()
(x, y), (w, h) = win.position, win.size
subprocess.run(f"xwd -root -silent | convert xwd:- -crop {w}x{h}+{x}+{y} png24:docs/play.png", shell=True, check=True)
app.close()
