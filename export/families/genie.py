"""Genie family: a world model learned from video alone, played through latent actions.

Three parts, trained one after the other on frames only (Genie, Bruce et al. 2024, at CPU size):

- **video tokenizer** V: the image VQ-VAE of `tokenizer.py` applied to every frame, N = grid x grid tokens;
- **latent action model** (LAM): an encoder sees frames t-1, t and t+1 and picks one of K codes (K = 8 by
  default; a categorical bottleneck); a decoder must redraw frame t+1 from frames t-1 and t and that code
  alone. What the past frames cannot tell about the next one (where the player moved) has to go through the
  K-way bottleneck, so the codes become actions. The LAM is not in the step; it labels the training video
  for the dynamics model and, at evaluation, the real clips (it ships beside the graphs as `lam.onnx`);
- **dynamics model** M: MaskGIT over the next frame's N tokens. The input at each position is the embedding
  of that position's token in each of the W past frames, plus the next frame's token there (or MASK), plus
  the latent action and the position; a bidirectional transformer over the N positions predicts the masked
  tokens. (Genie's spatio-temporal transformer attends over time; here the W frames of the window are
  stacked per position instead, which costs a W-th of the attention and keeps the step's cost fixed.)

Exported graphs (see `dreamgym/bundle.py` for the contract):

    reset   (context_obs [B, C, S, S, 3] float, context_actions [B, C] int64) -> (tokens, obs, latent):
            the last W real frames tokenised; a video dream needs no actions to start (the argument is read
            into nothing).
    step    (tokens [B, W, N], action [B] int64 in [0, K), noise_tokens [B, I, N, V]) ->
            (next_tokens, obs, reward, terminated, latent): I MaskGIT iterations (fixed, with a fixed
            temperature, both in the manifest's model config). Every iteration samples every masked token by
            Gumbel-max (noise from the runtime), then keeps the n_i most confident (n_i on the cosine
            schedule, n_I = N). The window moves by one frame: a step costs the same at step 10 and 10,000.
            A video has no reward: reward is 0 and terminated false.
    render  (tokens) -> frame: the decoding of the newest frame's tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families import Family
from dreamgym.export.families.tokenizer import ImageTokenizer, ImageTokenizerConfig, frame_reset_example, gumbel_noise
from dreamgym.manifest import NoiseSpec, TensorSpec


@dataclass(frozen=True)
class GenieConfig:
    frame_size: int = 64
    """frame side in pixels"""
    grid: int = 8
    """tokens per frame side: N = grid * grid tokens per frame"""
    vocab: int = 256
    """codebook size of the video tokenizer"""
    code_dim: int = 32
    """width of a tokenizer code"""
    tok_channels: int = 32
    """channels of the tokenizer's first conv layer"""
    actions: int = 8
    """K: latent actions (the LAM's codebook, the dream's Discrete(K) action space)"""
    lam_dim: int = 16
    """width of a latent action code"""
    lam_channels: int = 32
    """channels of the LAM's first conv layer (x2 per downsampling)"""
    window: int = 2
    """W: past frames the dynamics model and the LAM's decoder see (the step's fixed-size state)"""
    d_model: int = 128
    """width of the dynamics transformer"""
    heads: int = 4
    """attention heads"""
    layers: int = 4
    """transformer blocks"""
    ffn_mult: int = 2
    """feed-forward width as a multiple of d_model"""
    iterations: int = 4
    """MaskGIT iterations per step (baked into the step graph)"""
    temperature: float = 1.0
    """sampling temperature of the step (baked into the step graph; logits are divided by it)"""
    context_noise: float = 0.05
    """training only: share of past-frame tokens replaced by random ones, so the dynamics model learns to
    read frames it drew itself"""

    @property
    def tokens(self) -> int:
        return self.grid * self.grid

    @property
    def tokenizer_config(self) -> ImageTokenizerConfig:
        return ImageTokenizerConfig(
            size=self.frame_size,
            grid=self.grid,
            codebook=self.vocab,
            code_dim=self.code_dim,
            channels=self.tok_channels,
        )


def unmask_schedule(n: int, iterations: int) -> list[int]:
    """Tokens known after each MaskGIT iteration: n - floor(n cos(pi/2 i/I)), ending at n."""
    return [n - math.floor(n * math.cos(math.pi / 2 * i / iterations)) for i in range(1, iterations + 1)]


def _frames_in(frames: torch.Tensor) -> torch.Tensor:
    """uint8 or float 0..255 frames (B, F, S, S, 3) -> channels-first in [-1, 1], (B, 3F, S, S)."""
    B, Fr, S = frames.shape[:3]
    return frames.float().permute(0, 1, 4, 2, 3).reshape(B, Fr * 3, S, S) / 127.5 - 1.0


class LatentActionModel(nn.Module):
    """Frames t-W+1 .. t+1 -> one of K codes (encoder); frames t-W+1 .. t and the code -> frame t+1 (decoder).

    Trained in two phases. First with a continuous code: the encoder's small vector z (lam_dim), blurred by
    Gaussian noise and pulled towards zero (so it can carry a few bits only, which go where the past frames
    leave the next frame most uncertain: the player's move). Then the K codes are put on k-means centres of z
    over the training clips, and the decoder is trained on the nearest code (straight-through), so it redraws
    frame t+1 from the past and one of K codes alone. The encoder also sees the change from frame t to t+1 as
    channels of its own, where an action shows.

    Two bottlenecks trained from scratch collapsed on Breakout within a few hundred updates, one code for every
    transition: a nearest-code VQ (the codes sat at a point the encoder never left; restarting dead codes onto
    its outputs put them on that same point) and a straight-through Gumbel-softmax with a mutual-information
    bonus (every clip confident, all on the same code): the decoder learned the average paddle before the
    encoder learned anything, and a discrete code gave it no gradient to start from."""

    def __init__(self, c: GenieConfig):
        super().__init__()
        self.c = c
        steps = int(math.log2(c.frame_size // 4))  # down to 4x4
        enc, ch = [], 3 * (c.window + 2)
        for i in range(steps):
            out = c.lam_channels * 2 ** min(i, 2)
            enc += [nn.Conv2d(ch, out, 4, 2, 1), nn.SiLU()]
            ch = out
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(ch * 16, 256), nn.SiLU(), nn.Linear(256, c.lam_dim))
        self.codes = nn.Embedding(c.actions, c.lam_dim)
        nn.init.normal_(self.codes.weight)
        # decoder: a small U-Net over the past frames, the code added at its 8x8 bottleneck
        down, ch, widths = [], 3 * c.window, []
        for i in range(steps - 1):  # to 8x8
            out = c.lam_channels * 2 ** min(i, 2)
            down.append(nn.Sequential(nn.Conv2d(ch, out, 4, 2, 1), nn.SiLU()))
            widths.append(out)
            ch = out
        self.down = nn.ModuleList(down)
        self.code_in = nn.Linear(c.lam_dim, ch)
        self.mid = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1), nn.SiLU())
        up = []
        for i in reversed(range(steps - 1)):
            out = c.lam_channels * 2 ** min(max(i - 1, 0), 2)
            up.append(nn.Sequential(nn.ConvTranspose2d(ch + widths[i], out, 4, 2, 1), nn.SiLU()))
            ch = out
        self.up = nn.ModuleList(up)
        self.out = nn.Conv2d(ch + 3 * c.window, 3, 3, 1, 1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, W + 1, S, S, 3) -> z (B, lam_dim); the change t -> t+1 is given as channels too."""
        x = _frames_in(frames)
        return self.encoder(torch.cat([x, x[:, -3:] - x[:, -6:-3]], 1))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        d = z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.codes.weight.T + self.codes.weight.pow(2).sum(-1)
        return d.argmin(-1)

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, W + 1, S, S, 3) -> latent action ids (B,): what `lam.onnx` computes."""
        return self.nearest(self.encode(frames))

    @torch.no_grad()
    def fit_codes(self, z: torch.Tensor, iters: int = 50, seed: int = 0) -> torch.Tensor:
        """Put the K codes on k-means centres of encoder outputs z (N, lam_dim) (k-means++ start); returns
        how many of the N fall to each code."""
        g = torch.Generator().manual_seed(seed)
        K = self.c.actions
        cent = z[torch.randint(len(z), (1,), generator=g)]
        for _ in range(K - 1):
            d = torch.cdist(z, cent).min(1).values.pow(2)
            cent = torch.cat([cent, z[torch.multinomial(d / d.sum(), 1, generator=g)]])
        for _ in range(iters):
            ids = torch.cdist(z, cent).argmin(1)
            for k in range(K):
                if (ids == k).any():
                    cent[k] = z[ids == k].mean(0)
        self.codes.weight.copy_(cent)
        return torch.bincount(torch.cdist(z, cent).argmin(1), minlength=K)

    def decode(self, past: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """past frames (B, W, S, S, 3), code vectors (B, lam_dim) -> frame t+1 in [0, 1], (B, 3, S, S)."""
        x0 = _frames_in(past)
        x, skips = x0, []
        for d in self.down:
            x = d(x)
            skips.append(x)
        x = self.mid(x + self.code_in(code)[:, :, None, None])
        for u, s in zip(self.up, reversed(skips)):
            x = u(torch.cat([x, s], 1))
        return torch.sigmoid(self.out(torch.cat([x, x0], 1)))

    def loss(self, frames: torch.Tensor, quantize: bool = True, noise: float = 0.1, prior: float = 1e-2):
        """frames (B, W + 1, S, S, 3) uint8. The reconstruction of frame t+1 (squared error summed over the
        frame) is weighted towards the pixels that changed from frame t (where the action shows; most of a frame
        is still background). `quantize=False` (the first phase): the decoder gets z plus Gaussian noise of std
        `noise`, and `prior` times |z|^2 is added; `quantize=True`: the nearest code (straight-through) and the
        VQ losses."""
        z = self.encode(frames)
        ids = self.nearest(z.detach())
        if quantize:
            q = self.codes(ids)
            reg = F.mse_loss(q, z.detach()) + 0.25 * F.mse_loss(z, q.detach())
            code = z + (q - z).detach()
        else:
            reg = prior * z.pow(2).sum(-1).mean()
            code = z + noise * torch.randn_like(z)
        pred = self.decode(frames[:, :-1], code)
        target = frames[:, -1].permute(0, 3, 1, 2).float() / 255.0
        moved = (frames[:, -1].float() - frames[:, -2].float()).abs().amax(-1) > 10  # (B, S, S)
        w = 1.0 + 20.0 * moved.float()
        err = (pred - target).pow(2).mean(1)
        rec = (err * w).sum((1, 2)).mean()
        return rec + reg, {
            "lam_rec": rec.item(),
            "lam_reg": reg.item(),
            "lam_psnr": float(-10 * torch.log10(err.mean().detach())),
            "codes_used": ids.unique().numel(),
            "z_std": z.detach().std(0).mean().item(),
        }


class Block(nn.Module):
    """Pre-norm transformer block with bidirectional attention, written with plain matmuls (ONNX-friendly)."""

    def __init__(self, d: int, heads: int, ffn_mult: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_mult * d), nn.GELU(approximate="tanh"), nn.Linear(ffn_mult * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, d = x.shape
        H = self.heads
        q, k, v = self.qkv(self.ln1(x)).view(B, N, 3, H, d // H).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(d // H)), -1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, N, d))
        return x + self.ffn(self.ln2(x))


class Genie(nn.Module):
    family = "genie"

    def __init__(self, cfg: GenieConfig):
        super().__init__()
        self.cfg = c = cfg
        self.tokenizer = ImageTokenizer(c.tokenizer_config)
        self.lam = LatentActionModel(c)
        d, N = c.d_model, c.tokens
        self.past_emb = nn.Embedding(c.window * c.vocab, d)  # one table per place in the window
        self.next_emb = nn.Embedding(c.vocab + 1, d)  # the last id is MASK
        self.act_emb = nn.Embedding(c.actions, d)
        self.pos = nn.Parameter(0.02 * torch.randn(N, d))
        self.blocks = nn.ModuleList(Block(d, c.heads, c.ffn_mult) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, c.vocab)
        self.register_buffer("slot_offset", torch.arange(c.window).view(1, -1, 1) * c.vocab, persistent=False)
        self.frame_decoder = nn.Module()  # the tokenizer's decoder draws frames inside the step
        self.example_contexts: dict[str, np.ndarray] | None = None  # real windows for the reset parity check

    @property
    def mask_id(self) -> int:
        return self.cfg.vocab

    # -- the dynamics model ----------------------------------------------------------------------------
    def logits(self, past: torch.Tensor, nxt: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """past tokens (B, W, N), next tokens with MASK (B, N), latent actions (B,) -> logits (B, N, V)."""
        x = self.past_emb(past + self.slot_offset).sum(1) + self.next_emb(nxt) + self.pos
        x = x + self.act_emb(action).unsqueeze(1)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))

    def dynamics_loss(self, tokens: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """tokens (B, W + 1, N) of frames t-W+1 .. t+1, latent actions (B,) taken after frame t. MaskGIT:
        a cosine-distributed share of the next frame's tokens is masked and predicted."""
        c = self.cfg
        B, _, N = tokens.shape
        past, target = tokens[:, :-1], tokens[:, -1]
        if self.training and c.context_noise > 0:
            swap = torch.rand(past.shape, device=past.device) < c.context_noise
            past = torch.where(swap, torch.randint_like(past, c.vocab), past)
        ratio = torch.cos(math.pi / 2 * torch.rand(B, 1, device=tokens.device))
        mask = torch.rand(B, N, device=tokens.device) < ratio
        mask[torch.arange(B), torch.randint(N, (B,))] = True  # at least one masked token per frame
        logits = self.logits(past, torch.where(mask, torch.full_like(target, self.mask_id), target), actions)
        loss = F.cross_entropy(logits[mask], target[mask])
        with torch.no_grad():
            hit = logits.argmax(-1) == target
            moving = target != tokens[:, -2]
            acc_moving = hit[mask & moving].float().mean().item() if (mask & moving).any() else float("nan")
        return loss, {"dyn": loss.item(), "acc": hit[mask].float().mean().item(), "acc_moving": acc_moving}

    def loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """All three parts on clips (B, W + 1, S, S, 3) uint8: the recipe trains them one after the other
        (the tokenizer's and the LAM's own `loss`, then `dynamics_loss`); this joint form is for checks."""
        B, Fr = frames.shape[:2]
        S = self.cfg.frame_size
        tok_loss, _ = self.tokenizer.loss(frames.reshape(B * Fr, S, S, 3))
        lam_loss, _ = self.lam.loss(frames, quantize=False)  # the LAM's first phase
        with torch.no_grad():
            tokens = self.tokenizer.encode(frames.reshape(B * Fr, S, S, 3)).view(B, Fr, -1)
            actions = self.lam.infer(frames)
        dyn_loss, logs = self.dynamics_loss(tokens, actions)
        return tok_loss + lam_loss + dyn_loss, logs

    # -- inference: the exported functions -----------------------------------------------------------
    def maskgit(self, past: torch.Tensor, action: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The next frame's tokens (B, N) by `iterations` MaskGIT steps; noise (B, I, N, V) Gumbel."""
        c = self.cfg
        N = c.tokens
        cur = torch.full_like(past[:, 0], self.mask_id)
        for i, keep in enumerate(unmask_schedule(N, c.iterations)):
            logits = self.logits(past, cur, action)
            if c.temperature != 1.0:
                logits = logits * (1.0 / c.temperature)
            sample = torch.argmax(logits + noise[:, i], -1)
            known = cur != self.mask_id
            cand = torch.where(known, cur, sample)
            if keep >= N:
                cur = cand
                break
            conf = torch.log_softmax(logits, -1).gather(-1, cand.unsqueeze(-1)).squeeze(-1)
            conf = torch.where(known, torch.full_like(conf, 1e9), conf)
            top = torch.topk(conf, keep, -1).indices
            chosen = torch.zeros_like(conf).scatter(1, top, 1.0) > 0
            cur = torch.where(chosen, cand, torch.full_like(cur, self.mask_id))
        return cur

    def latent_of(self, tokens: torch.Tensor) -> torch.Tensor:
        """The `latent` output: the tokenizer's code vectors of the newest frame, flattened (N * code_dim)."""
        return self.tokenizer.codes(tokens).flatten(1)

    def filter_context(self, context_obs, context_actions):
        """reset.onnx: the last W real frames tokenised; their actions are not needed (read into nothing, as
        the contract's reset takes them)."""
        c = self.cfg
        B, C = context_obs.shape[:2]
        S = c.frame_size
        frames = context_obs[:, C - c.window :].reshape(B * c.window, S, S, 3).clamp(0, 255)
        tokens = self.tokenizer.encode(frames).view(B, c.window, c.tokens)
        unused = (context_actions[:, :1] * 0).to(tokens.dtype)  # (B, 1), zeros
        tokens = tokens + unused.unsqueeze(-1)
        cur = tokens[:, -1]
        return tokens, self.tokenizer.decode_uint8(cur), self.latent_of(cur)

    def imagine_step(self, tokens, action, noise):
        """step.onnx: the next frame by MaskGIT; the window moves by one frame."""
        nxt = self.maskgit(tokens, action.long(), noise)
        state = torch.cat([tokens[:, 1:], nxt.unsqueeze(1)], 1)
        zeros = torch.zeros(tokens.shape[0], device=tokens.device)
        return state, self.tokenizer.decode_uint8(nxt), zeros, zeros > 0, self.latent_of(nxt)

    def render_frame(self, tokens):
        """render.onnx: the decoding of the newest frame's tokens."""
        return self.tokenizer.decode_uint8(tokens[:, -1])

    # -- the export surface (see families.WorldModel) -----------------------------------------------------
    def graph_functions(self) -> dict:
        return {"reset": self.filter_context, "step": self.imagine_step, "render": self.render_frame}

    def state_spec(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec("tokens", (self.cfg.window, self.cfg.tokens), "int64"),)

    def noise_spec(self, context_length: int) -> tuple[NoiseSpec, ...]:
        c = self.cfg
        return (NoiseSpec("noise_tokens", (c.iterations, c.tokens, c.vocab), graph="step", distribution="gumbel"),)

    @property
    def latent_dim(self) -> int:
        return self.cfg.tokens * self.cfg.code_dim

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        c = self.cfg
        S, N = c.frame_size, c.tokens
        tok = rng.integers(c.vocab, size=(batch, c.window, N)).astype(np.int64)
        gumbel = gumbel_noise(rng, (batch, c.iterations, N, c.vocab))
        reset = frame_reset_example(rng, batch, context_length, S, c.actions, self.example_contexts)
        return {
            "reset": reset,
            "step": {
                "tokens": tok,
                "action": rng.integers(c.actions, size=batch).astype(np.int64),
                "noise_tokens": gumbel,
            },
            "render": {"tokens": tok},
        }

    def step_macs(self) -> int:
        """Multiply-adds of one imagined env-step: `iterations` passes of the transformer over N positions
        (projections, attention, feed-forward, the token head) and the tokenizer's decoder on one frame."""
        from dreamgym.export.families.rem import decoder_macs

        c = self.cfg
        d, N = c.d_model, c.tokens
        per_layer = N * (4 * d * d + 2 * c.ffn_mult * d * d) + 2 * N * N * d
        return int(c.iterations * (c.layers * per_layer + N * d * c.vocab) + decoder_macs(self.tokenizer))


GENIE_TEXT = {
    "action_space": "latent actions (the real game's actions were never seen in training)",
    "action": "A latent action: one of the K codes the latent action model learned from video without labels "
    "(`action_meanings` say which real action each one resembles where a few labels named them). Actions "
    "outside the space raise `dreamgym.ActionError` and step no env.",
    "obs": "decoded frames: MaskGIT samples the next frame's tokens, the tokenizer's decoder draws them",
    "reward": "None: a dream learned from video has no reward (0 every step).",
    "reset": "tokenises its last frames, the dynamics model's window",
    "term": "Never terminates (a video has no end of game); episodes end by truncation",
}


def _spaces(c: GenieConfig):
    from gymnasium import spaces

    return spaces.Box(0, 255, (c.frame_size, c.frame_size, 3), np.uint8), spaces.Discrete(c.actions)


def _example_batch(c: GenieConfig, batch: int, rng: np.random.Generator) -> tuple:
    """Clips of W + 1 frames in `Genie.loss`'s layout: a bright square moving over noise, so frames change."""
    S = c.frame_size
    base = rng.integers(0, 60, (batch, 1, S, S, 3))
    frames = np.repeat(base, c.window + 1, 1).astype(np.uint8)
    for b in range(batch):
        x, y, dx = int(rng.integers(S - 8)), int(rng.integers(S - 8)), int(rng.integers(-3, 4))
        for t in range(c.window + 1):
            xx = int(np.clip(x + dx * t, 0, S - 8))
            frames[b, t, y : y + 8, xx : xx + 8] = 255
    return (torch.from_numpy(frames),)


FAMILY = Family(
    name="genie",
    description="Genie: video tokenizer, latent action model learned from frames alone, MaskGIT dynamics",
    config=GenieConfig,
    model=Genie,
    evaluator="dreamgym.export.measure.genie:GenieEvaluator",
    card_text=GENIE_TEXT,
    spaces=_spaces,
    example_batch=_example_batch,
)
