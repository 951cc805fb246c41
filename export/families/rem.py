"""Simulus/REM family: a VQ tokenizer V, a RetNet world model M with parallel observation prediction (POP),
and reward and termination heads, trained on discrete tokens and exported to the bundle's three graphs.

Time step t is a block of K + 1 tokens: the K tokens z_t of frame t, then the action a_t. The RetNet reads
blocks in its chunkwise form (a block is a chunk) and carries one fixed-size state per layer and head.
After block t, POP reads K learned prediction embeddings as one more chunk against that state, without
keeping the state it would produce, and a linear head turns their outputs into logits for all K tokens of
frame t + 1 at once. The action token's output feeds the reward head (classes -1, 0, +1, as in Pong) and
the termination head.

Exported graphs (see `dreamgym/bundle.py` for the contract):

    reset   (context_obs [B, C, S, S, 3] float, context_actions [B, C] int64) -> (retention, tokens, obs, latent)
            tokenises the C real frames, reads blocks (z_0, a_1) ... (z_{C-2}, a_{C-1}) (context_actions[i] is
            the action taken *before* frame i), keeps z_{C-1} as the current tokens and shows their decoding.
    step    (retention, tokens, action, noise_tokens [B, K, V]) -> (next_retention, next_tokens, obs, reward,
            terminated, latent): reads the block (tokens, action), predicts the next tokens in one pass, samples
            them by Gumbel-max (argmax of logits / temperature + noise; zero noise gives the most likely frame)
            and decodes them.
    render  (retention, tokens) -> frame: the decoding of the current tokens.

With `reward_input` a third state tensor, `last_reward` (B, 1), follows `tokens` in every graph: reset gives
zero, step reads it (added to the action token through its own embedding) and returns the reward it predicts.

Training (`loss`) runs the same `run` function over whole sequences: the block updates of the states are a
short loop over time (T steps), everything else is batched over all blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families import Family
from dreamgym.export.families.layers import mlp
from dreamgym.export.families.retnet import RetNetBlock, RetNetConfig
from dreamgym.export.families.tokenizer import ImageTokenizer, ImageTokenizerConfig, frame_reset_example, gumbel_noise
from dreamgym.manifest import NoiseSpec, TensorSpec

REWARD_VALUES = (-1.0, 0.0, 1.0)


@dataclass(frozen=True)
class REMConfig:
    frame_size: int = 64
    """frame side in pixels"""
    grid: int = 8
    """tokens per frame side: K = grid * grid tokens per frame"""
    vocab: int = 512
    """codebook size of the image tokenizer"""
    code_dim: int = 32
    """width of a code"""
    tok_channels: int = 32
    """channels of the tokenizer's first conv layer"""
    actions: int = 6
    """size of the Discrete action space"""
    d_model: int = 128
    """token width of the RetNet"""
    heads: int = 4
    """retention heads (decays 1 - 2^(-5-h))"""
    layers: int = 2
    """retention blocks"""
    ffn_mult: int = 2
    """feed-forward width as a multiple of d_model"""
    temperature: float = 1.0
    """sampling temperature baked into the step graph (logits are divided by it before the Gumbel noise)"""
    grid_noise: float = 1.0
    """with `ball_tokens`: the share of the Gumbel noise the grid's tokens are drawn with, so that they sample at
    `temperature` × `grid_noise` (0: their most likely codes) while the slots (the ball, the paddle) sample at
    `temperature`. Not learned: a bundle's weights can be re-exported with another (`--from-bundle`). The grid
    of a Pong frame without the ball holds the walls, the score and the paddles, which the real game moves
    deterministically; at 0, v5's frames were no truer at h = 100 (33.05 dB against 33.0 to 33.2 over sampling
    seeds, benchmarks/README.md), so the recipe keeps 1"""
    reward_weight: float = 1.0
    """weight of the reward loss"""
    nonzero_reward_weight: float = 5.0
    """class weight of the rare nonzero rewards in the reward loss"""
    changed_token_weight: float = 1.0
    """weight in the token loss of the tokens that differ from the same token of the frame before (the ball
    and the paddles: unweighted, "nothing moves here" outweighs every single place the ball may go)"""
    ball_tokens: bool = False
    """Pong's ball as two tokens of its own (row, column or none) after the grid's (`ImageTokenizerConfig.ball`):
    the world model predicts where the ball is, not which patch codes draw it"""
    paddle_token: bool = False
    """with `ball_tokens`: the player's paddle's row as one more token after the ball's
    (`ImageTokenizerConfig.paddle`), so that the contact is read from three tokens"""
    contact_weight: float = 1.0
    """with `ball_tokens`: extra factor on the ball's two tokens in the token loss at the steps where the ball is
    at or beyond column `contact_col` (near the player's paddle), the steps whose next frame decides a return or
    a lost point. v3 lost as many balls with the paddle tracking them as with the paddle moving away
    (benchmarks/pong_contact.py): the contact, a handful of tokens in a sequence, was drowned by the rest"""
    contact_col: int = 48
    """the column (of the frame) from which a step counts as contact for `contact_weight`"""
    coord_features: bool = False
    """with `ball_tokens`: the slot tokens (the ball's row and column, the paddle's row) also carry a fixed code of
    the place they name (`coord_table`: the coordinate, its sines and cosines, "none"), mapped by learned linear
    maps into their embeddings and out of the POP outputs into their logits. Without it each of the 65 ids of a
    slot is an embedding of its own, learned separately: that row 30 is next to row 31, or that the paddle's row
    and the ball's row are on one axis, must be learned from the few thousand contacts in the data, and v3 to v6
    did not learn whether the paddle is under the ball (benchmarks/pong_contact.py). With it, "paddle row minus
    ball row" is a linear function of the inputs, and "the ball one column further" one of the outputs"""
    slot_mixer: bool = False
    """with `coord_features`: before their logits, the slots' POP outputs are mixed by an MLP that reads all of
    them at once, the place codes of the current frame's slot tokens and the action (its last layer starts at
    zero: the model without it). The RetNet reads the ball and the paddle only through its retention state and
    turns each POP output into logits on its own, so "is the paddle under the ball" must pass through linear
    retention. Yet a small MLP on the ball's and the paddle's places in two frames and the action tells a bounce
    from a miss at 98 % of held-out decisive steps (p(bounce) 0.93 where reality bounces, 0.02 where it misses;
    benchmarks/pong_contact_ceiling.py), while v8 turned the ball back at 57 % of real bounces and 11 % of real
    misses (benchmarks/pong_bounce.py). The mixer gives the slots that direct path"""
    slot_history: int = 0
    """with `slot_mixer`: the mixer also reads the place codes of the slot tokens of the `slot_history` frames
    before the current one and the actions taken after them (a `slot_history` state tensor; its weights on them
    start at zero: the model without it). The player's paddle moves with inertia, and its next row is nearly a
    function of its last three rows and the last three actions (the most common next row given them, counted on 6
    held-out episodes, is right at 98 % of the other 2's steps it has seen, and covers 99 % of the 6's;
    benchmarks/pong_paddle_inertia.py), yet v5 put it on the real row one step after real context in 88 % of
    held-out windows, and at h = 100 its paddle was more than 2 pixels off in 36 % of frames, a quarter of its
    frame error (benchmarks/pong_psnr_parts.py): the retention state holds the frames before only decayed, each
    frame a block of K + 1 tokens ago. The rows and columns of the frames before also give the ball's speed"""
    reward_input: bool = False
    """feed each step's reward back into the next block (a `last_reward` state tensor), so the model knows a
    point was just scored; without it nothing in the frames tells it, and one point repeats for several steps"""

    @property
    def tokens(self) -> int:
        """tokens per frame"""
        return self.tokenizer_config.tokens

    @property
    def token_vocab(self) -> int:
        """token ids (the codes, then the ball's rows and columns with `ball_tokens`)"""
        return self.tokenizer_config.vocab

    @property
    def tokenizer_config(self) -> ImageTokenizerConfig:
        return ImageTokenizerConfig(
            size=self.frame_size,
            grid=self.grid,
            codebook=self.vocab,
            code_dim=self.code_dim,
            channels=self.tok_channels,
            ball=self.ball_tokens,
            paddle=self.paddle_token,
        )

    @property
    def retnet_config(self) -> RetNetConfig:
        return RetNetConfig(d_model=self.d_model, heads=self.heads, layers=self.layers, ffn_mult=self.ffn_mult)


class REM(nn.Module):
    family = "rem"

    def __init__(self, cfg: REMConfig):
        super().__init__()
        self.cfg = c = cfg
        self.tokenizer = ImageTokenizer(c.tokenizer_config)
        self.blocks = nn.ModuleList(RetNetBlock(c.retnet_config) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.tok_emb = nn.Embedding(c.token_vocab, c.d_model)
        self.act_emb = nn.Embedding(c.actions, c.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(c.tokens + 1, c.d_model))  # place within a block
        self.pop = nn.Parameter(0.02 * torch.randn(c.tokens, c.d_model))  # prediction embeddings X^u
        self.token_head = nn.Linear(c.d_model, c.token_vocab)
        if c.ball_tokens:  # each slot predicts its own kind of id: a code, a ball row or column, a paddle row
            G = c.grid * c.grid
            allowed = torch.zeros(c.tokens, c.token_vocab, dtype=torch.bool)
            allowed[:G, : c.vocab] = True
            for i, (first, n) in enumerate(c.tokenizer_config.slots):
                allowed[G + i, first : first + n] = True
            self.register_buffer("slot_mask", torch.where(allowed, 0.0, -1e9), persistent=False)
            share = torch.ones(c.tokens, 1)
            share[:G] = c.grid_noise
            self.register_buffer("noise_share", share, persistent=False)
        elif c.grid_noise != 1.0:
            raise ValueError("grid_noise needs ball_tokens: without them the ball is drawn by the grid's codes")
        if c.coord_features:  # fixed place codes of the slot ids (zero rows for the grid's codes)
            if not c.ball_tokens:
                raise ValueError("coord_features needs ball_tokens: it codes the places the slot tokens name")
            table = torch.from_numpy(coord_table(c.tokenizer_config))
            self.register_buffer("coord_table", table, persistent=False)
            self.coord_in = nn.Linear(table.shape[1], c.d_model, bias=False)
            self.coord_out = nn.Linear(c.d_model, table.shape[1], bias=False)
        if c.slot_mixer:  # the slots' POP outputs, their place codes and the action -> a residual on each slot
            if not c.coord_features:
                raise ValueError("slot_mixer needs coord_features: it reads the places the slot tokens name")
            n, nf = len(c.tokenizer_config.slots), self.coord_table.shape[1]
            width = n * (c.d_model + nf) + c.d_model + c.slot_history * (n * nf + c.d_model)
            self.mixer = mlp(width, 2 * c.d_model, n * c.d_model, layers=2)
            nn.init.zeros_(self.mixer[-1].weight), nn.init.zeros_(self.mixer[-1].bias)
        if c.slot_history < 0 or (c.slot_history and not c.slot_mixer):
            raise ValueError(f"slot_history={c.slot_history}: a number of frames >= 0, and > 0 needs slot_mixer")
        self.reward_head = mlp(c.d_model, c.d_model, len(REWARD_VALUES))
        if c.reward_input:  # the previous reward's class, added to the action token (zero at first: no effect)
            self.rew_emb = nn.Embedding(len(REWARD_VALUES), c.d_model)
            nn.init.zeros_(self.rew_emb.weight)
        self.term_head = mlp(c.d_model, c.d_model, 1)
        self.register_buffer("reward_values", torch.tensor(REWARD_VALUES))
        self.frame_decoder = (
            nn.Module()
        )  # the exporter's outboard renderer: here the tokenizer's decoder is in the step
        # real context windows (obs [N, C, S, S, 3], actions [N, C]) for the reset graph's parity check: on
        # uniform noise frames two codes can be equally near a patch, and torch and onnxruntime may round
        # the tie differently (a different token, then a different state), which says nothing about export
        self.example_contexts: dict[str, np.ndarray] | None = None

    # -- the world model -------------------------------------------------------------------------------
    def initial_state(self, B: int, device=None) -> torch.Tensor:
        c = self.cfg
        dh = c.d_model // c.heads
        return torch.zeros(B, c.layers, c.heads, dh, dh, device=device)

    def embed_blocks(
        self, tokens: torch.Tensor, actions: torch.Tensor, prev_rewards: torch.Tensor | None = None
    ) -> torch.Tensor:
        """tokens (B, T, K) int, actions (B, T) int, and with `reward_input` the rewards received before each
        block (B, T) in {-1, 0, 1} (None: all zero) -> block embeddings (B, T, K + 1, d)."""
        a = self.act_emb(actions)
        if self.cfg.reward_input:
            cls = torch.ones_like(actions) if prev_rewards is None else reward_class(prev_rewards)
            a = a + self.rew_emb(cls)
        e = self.tok_emb(tokens)
        if self.cfg.coord_features:
            e = e + self.coord_in(self.coord_table[tokens])
        x = torch.cat([e, a.unsqueeze(2)], 2)
        return x + self.pos

    def run(self, x: torch.Tensor, state: torch.Tensor, pop: bool = True):
        """Blocks x (B, T, C, d) from state (B, L, H, dh, dh). Returns the block outputs (B, T, C, d), the POP
        outputs after every block (B, T, K, d) or None, and the state after the last block."""
        B, T, C, d = x.shape
        K = self.cfg.tokens
        xp = self.pop.expand(B * T, K, d) if pop else None
        finals = []
        for i, blk in enumerate(self.blocks):
            msr = blk.msr
            h = blk.ln1(x).reshape(B * T, C, d)
            q, k, v = msr.project(h)
            upd = msr.chunk_update(k, v).view(B, T, *state.shape[2:])
            g = msr.chunk_decay(C)
            s, before, after = state[:, i], [], []
            for t in range(T):  # the only sequential part: T small matrix updates
                before.append(s)
                s = g * s + upd[:, t]
                after.append(s)
            finals.append(s)
            before_s = torch.stack(before, 1).flatten(0, 1)
            y = msr.retain(q, k, v, before_s)
            x = x + msr.finish(h, y).view(B, T, C, d)
            x = x + blk.ffn(blk.ln2(x))
            if pop:
                hp = blk.ln1(xp)
                qp, kp, vp = msr.project(hp)
                xp = xp + msr.finish(hp, msr.retain(qp, kp, vp, torch.stack(after, 1).flatten(0, 1)))
                xp = xp + blk.ffn(blk.ln2(xp))
        out = self.ln_f(x)
        pred = self.ln_f(xp).view(B, T, K, d) if pop else None
        return out, pred, torch.stack(finals, 1)

    def heads(self, act_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.reward_head(act_out), self.term_head(act_out).squeeze(-1)

    def loss(self, tokens, actions, rewards, terms, first_reward=None) -> tuple[torch.Tensor, dict[str, float]]:
        """tokens (B, T + 1, K) of frames 0..T, actions (B, T) taken after frames 0..T-1, rewards (B, T) in
        {-1, 0, 1} and terminations (B, T) received after them; `first_reward` (B,), the reward received
        before frame 0 (read with `reward_input`; None: zero)."""
        B, T = actions.shape
        prev = None
        if self.cfg.reward_input:
            first = torch.zeros(B, device=tokens.device) if first_reward is None else first_reward.float()
            prev = torch.cat([first[:, None], rewards[:, :-1].float()], 1)
        x = self.embed_blocks(tokens[:, :T], actions, prev)
        out, pred, _ = self.run(x, self.initial_state(B, tokens.device))
        logits = self.token_logits(
            self.mix_slots(pred, tokens[:, :T], actions, self.history_of(tokens[:, :T], actions))
        )
        target = tokens[:, 1:]
        moving = target != tokens[:, :T]  # tokens that change from one frame to the next
        per_tok = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none").view_as(target)
        wt = 1.0 + (self.cfg.changed_token_weight - 1.0) * moving.float()
        if self.cfg.ball_tokens and self.cfg.contact_weight != 1.0:
            S, G = self.cfg.frame_size, self.cfg.grid * self.cfg.grid
            col = tokens[:, :T, G + 1] - self.cfg.tokenizer_config.slots[1][0]  # the ball's column (S: none)
            near = (col >= self.cfg.contact_col) & (col < S)
            ball = torch.zeros_like(wt, dtype=torch.bool)
            ball[..., G : G + 2] = True
            wt = torch.where(near[..., None] & ball, wt * self.cfg.contact_weight, wt)
        tok_loss = (per_tok * wt).sum() / wt.sum()
        r_logits, t_logit = self.heads(out[:, :, -1])
        r_cls = reward_class(rewards)
        w = torch.tensor([self.cfg.nonzero_reward_weight, 1.0, self.cfg.nonzero_reward_weight], device=tokens.device)
        r_loss = F.cross_entropy(r_logits.flatten(0, 1), r_cls.flatten(), weight=w)
        t_loss = F.binary_cross_entropy_with_logits(t_logit, terms.float())
        loss = tok_loss + self.cfg.reward_weight * r_loss + t_loss
        with torch.no_grad():
            hit = logits.argmax(-1) == target
            acc_moving = hit[moving].float().mean().item() if moving.any() else float("nan")
        return loss, {
            "tokens": tok_loss.item(),
            "reward": r_loss.item(),
            "term": t_loss.item(),
            "acc": hit.float().mean().item(),
            "acc_moving": acc_moving,
        }

    def none_history(self, B: int, device=None) -> torch.Tensor:
        """(B, slot_history, n + 1) int64: every slot "none" and the action 0, the history before a first frame."""
        c = self.cfg
        nones = [first + c.frame_size for first, _ in c.tokenizer_config.slots]
        row = torch.tensor([*nones, 0], dtype=torch.long, device=device)
        return row.expand(B, c.slot_history, len(row)).clone()

    def history_of(self, tokens: torch.Tensor, actions: torch.Tensor, before: torch.Tensor | None = None):
        """The `slot_history` of every block of a sequence: tokens (B, T, K), actions (B, T) and the history of
        its first block (B, h, n + 1) (None: `none_history`) -> (B, T, h, n + 1), entry j-1 of block t holding
        the slot ids of block t - j and the action taken after it (None without `slot_history`)."""
        h = self.cfg.slot_history
        if not h:
            return None
        B, T, K = tokens.shape
        G = self.cfg.grid * self.cfg.grid
        if before is None:
            before = self.none_history(B, tokens.device)
        steps = torch.cat([tokens[:, :, G:], actions.long().unsqueeze(-1)], -1)  # (B, T, n + 1)
        seq = torch.cat([before.flip(1), steps], 1)  # oldest first: blocks -h .. T-1
        return torch.stack([seq[:, h - j : h - j + T] for j in range(1, h + 1)], 2)

    def mix_slots(
        self, pred: torch.Tensor, tokens: torch.Tensor, actions: torch.Tensor, history: torch.Tensor | None = None
    ) -> torch.Tensor:
        """POP outputs (B, T, K, d) after the blocks of `tokens` (B, T, K) and `actions` (B, T), with the
        `history_of` those blocks (B, T, h, n + 1) -> the same with the slots' outputs mixed (`slot_mixer`;
        unchanged without it)."""
        if not self.cfg.slot_mixer:
            return pred
        B, T, K, d = pred.shape
        G = self.cfg.grid * self.cfg.grid
        n = K - G
        slots = pred[:, :, G:]
        codes = self.coord_table[tokens[:, :, G:]]
        parts = [slots.reshape(B, T, n * d), codes.reshape(B, T, -1), self.act_emb(actions)]
        if self.cfg.slot_history:
            parts.append(self.coord_table[history[..., :n]].reshape(B, T, -1))
            parts.append(self.act_emb(history[..., n]).reshape(B, T, -1))
        inp = torch.cat(parts, -1)
        mixed = slots + self.mixer(inp).view(B, T, n, d)
        return torch.cat([pred[:, :, :G], mixed], 2)

    def load_without_history(self, sd: dict) -> None:
        """Load the weights of the same model without `slot_history` (a state dict): the mixer's first layer reads
        the history after what it read before, and its weights on it start at zero, so the model computes what
        the one it was loaded from did until it is trained further."""
        c = self.cfg
        w = torch.zeros_like(self.state_dict()["mixer.0.weight"])
        old = sd["mixer.0.weight"]
        added = c.slot_history * (len(c.tokenizer_config.slots) * self.coord_table.shape[1] + c.d_model)
        if not c.slot_history or old.shape != (w.shape[0], w.shape[1] - added):
            raise ValueError(f"a mixer of {tuple(old.shape)}: not this model's ({tuple(w.shape)}) without its history")
        w[:, : old.shape[1]] = old
        self.load_state_dict({**sd, "mixer.0.weight": w})

    # -- inference: the exported functions -----------------------------------------------------------
    def token_logits(self, pred: torch.Tensor) -> torch.Tensor:
        """POP outputs (..., K, d) -> token logits (..., K, V), each slot restricted to its own ids."""
        logits = self.token_head(pred)
        if self.cfg.coord_features:  # a slot's logit also reads the place its id names
            logits = logits + self.coord_out(pred) @ self.coord_table.T
        return logits + self.slot_mask if self.cfg.ball_tokens else logits

    def _sample(self, pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        logits = self.token_logits(pred)
        if self.cfg.temperature != 1.0:
            logits = logits * (1.0 / self.cfg.temperature)
        if self.cfg.grid_noise != 1.0:  # the grid's tokens at temperature × grid_noise (`REMConfig.grid_noise`)
            noise = noise * self.noise_share
        return torch.argmax(logits + noise, -1)

    def filter_context(self, context_obs, context_actions):
        """reset.onnx. context_obs (B, C, S, S, 3) float 0..255, context_actions (B, C) int64."""
        B, C = context_obs.shape[:2]
        S = self.cfg.frame_size
        frames = context_obs.reshape(B * C, S, S, 3).clamp(0, 255)
        tokens = self.tokenizer.encode(frames).view(B, C, -1)
        state = self.initial_state(B, context_obs.device)
        out = None
        if C > 1:  # the context's rewards are not given: the model reads them as zero
            x = self.embed_blocks(tokens[:, :-1], context_actions[:, 1:].long())
            out, _, state = self.run(x, state, pop=False)
        current = tokens[:, -1]
        latent = out[:, -1].mean(1) if out is not None else torch.zeros(B, self.cfg.d_model)
        last = (torch.zeros(B, 1, device=context_obs.device),) if self.cfg.reward_input else ()
        if self.cfg.slot_history:  # the first imagined block's: the context's frames before its last (`history_of`)
            # block i is frame i and the action taken after it, context_actions[:, i + 1]; the last block's own
            # action is the first step's, not part of its history (a placeholder here)
            acts = torch.cat([context_actions[:, 1:].long(), torch.zeros_like(context_actions[:, :1]).long()], 1)
            last = (*last, self.history_of(tokens, acts)[:, -1])
        return state, current, *last, self.tokenizer.decode_uint8(current), latent

    def imagine_step(self, retention, tokens, *rest):
        """step.onnx (retention, tokens[, last_reward][, slot_history], action, noise_tokens): one block in, the
        next frame's K tokens out in one pass, sampled by Gumbel-max."""
        rest = list(rest)
        last = rest.pop(0) if self.cfg.reward_input else None
        hist = rest.pop(0) if self.cfg.slot_history else None
        action, noise = rest
        action = action.long().view(-1, 1)
        x = self.embed_blocks(tokens.unsqueeze(1), action, None if last is None else last.view(-1, 1))
        out, pred, state = self.run(x, retention)
        mixed = self.mix_slots(pred, tokens.unsqueeze(1), action, None if hist is None else hist.unsqueeze(1))
        nxt = self._sample(mixed[:, 0], noise)
        r_logits, t_logit = self.heads(out[:, 0, -1])
        reward = self.reward_values[r_logits.argmax(-1)]
        terminated = t_logit > 0
        new_last = (reward.view(-1, 1),) if self.cfg.reward_input else ()
        if hist is not None:  # this block (its slots and action) becomes the most recent entry
            G = self.cfg.grid * self.cfg.grid
            entry = torch.cat([tokens[:, G:], action], 1).unsqueeze(1)
            new_last = (*new_last, torch.cat([entry, hist[:, :-1]], 1))
        return state, nxt, *new_last, self.tokenizer.decode_uint8(nxt), reward, terminated, out[:, 0].mean(1)

    def render_frame(self, retention, tokens, *unused):
        """render.onnx: the decoding of the current tokens (the other state tensors are not needed)."""
        return self.tokenizer.decode_uint8(tokens)

    # -- the export surface (see families.WorldModel) -----------------------------------------------------
    def graph_functions(self) -> dict:
        return {"reset": self.filter_context, "step": self.imagine_step, "render": self.render_frame}

    def state_spec(self) -> tuple[TensorSpec, ...]:
        c = self.cfg
        dh = c.d_model // c.heads
        last = (TensorSpec("last_reward", (1,)),) if c.reward_input else ()
        if c.slot_history:
            n = len(c.tokenizer_config.slots)
            last = (*last, TensorSpec("slot_history", (c.slot_history, n + 1), "int64"))
        return TensorSpec("retention", (c.layers, c.heads, dh, dh)), TensorSpec("tokens", (c.tokens,), "int64"), *last

    def noise_spec(self, context_length: int) -> tuple[NoiseSpec, ...]:
        c = self.cfg
        return (NoiseSpec("noise_tokens", (c.tokens, c.token_vocab), graph="step", distribution="gumbel"),)

    @property
    def latent_dim(self) -> int:
        return self.cfg.d_model

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        c = self.cfg
        S, K = c.frame_size, c.tokens
        ret = (0.3 * rng.standard_normal((batch, *self.state_spec()[0].shape))).astype(np.float32)
        tok = _random_tokens(c, rng, (batch,))
        gumbel = gumbel_noise(rng, (batch, K, c.token_vocab))
        reset = frame_reset_example(rng, batch, context_length, S, c.actions, self.example_contexts)
        last = {}
        if c.reward_input:
            last = {"last_reward": rng.choice(np.array(REWARD_VALUES, np.float32), size=(batch, 1))}
        if c.slot_history:  # past frames' slot ids and actions
            steps = _random_tokens(c, rng, (batch, c.slot_history))[..., c.grid * c.grid :]
            acts = rng.integers(c.actions, size=(batch, c.slot_history, 1))
            last["slot_history"] = np.concatenate([steps, acts], -1).astype(np.int64)
        return {
            "reset": reset,
            "step": {
                "retention": ret,
                "tokens": tok,
                **last,
                "action": rng.integers(c.actions, size=batch).astype(np.int64),
                "noise_tokens": gumbel,
            },
            "render": {"retention": ret, "tokens": tok, **last},
        }

    def step_macs(self) -> int:
        """Multiply-adds of one imagined env-step: the RetNet on K + 1 block tokens and K prediction tokens,
        the token head on K tokens, the heads, and the tokenizer's decoder (convolutions counted exactly)."""
        c = self.cfg
        d, K = c.d_model, c.tokens
        per_tok = 5 * d * d + 2 * c.ffn_mult * d * d  # qkv, gate, out, ffn
        dh = d // c.heads
        ret = 2 * dh * dh * c.heads  # read the state, add to it
        macs = c.layers * ((2 * K + 1) * (per_tok + ret)) + K * d * c.token_vocab
        if c.coord_features:  # the place codes into K embeddings, out of K POP outputs, onto every id's logit
            nf = self.coord_table.shape[1]
            macs += 2 * K * nf * d + K * nf * c.token_vocab
        if c.slot_mixer:  # once per step, on all the slots together
            macs += sum(m.in_features * m.out_features for m in self.mixer.modules() if isinstance(m, nn.Linear))
        macs += sum(
            m.in_features * m.out_features
            for h in (self.reward_head, self.term_head)
            for m in h.modules()
            if isinstance(m, nn.Linear)
        )
        return int(macs + decoder_macs(self.tokenizer))


def _random_tokens(c: REMConfig, rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Random token ids (*shape, K), each slot's from its own range (codes; the ball's row and column; the
    paddle's row)."""
    tok = rng.integers(c.vocab, size=(*shape, c.tokens))
    G = c.grid * c.grid
    for i, (first, n) in enumerate(c.tokenizer_config.slots):
        tok[..., G + i] = first + rng.integers(n, size=shape)
    return tok.astype(np.int64)


COORD_FREQUENCIES = 6
"""sine and cosine pairs per axis in `coord_table`: periods of 2, 1, 1/2 ... 1/16 of the frame (4 px at 64)"""


def coord_table(c: ImageTokenizerConfig) -> np.ndarray:
    """The fixed place code of every token id (V, 2 * (2 * COORD_FREQUENCIES + 2)) float32: zero for the grid's
    codes; for a slot's id, on its axis's half (rows: the ball's row and the paddle's row; columns: the ball's
    column) the coordinate x = (v + 0.5) / S - 0.5, sin and cos of pi * 2^k * x for k < COORD_FREQUENCIES, and
    0, or all zero but a last 1 for the "none" id (v = S)."""
    S, F = c.size, COORD_FREQUENCIES
    width = 2 * F + 2
    table = np.zeros((c.vocab, 2 * width), np.float32)
    axes = ("row", "col", "row")  # the order of `ImageTokenizerConfig.slots`
    v = np.arange(S, dtype=np.float64)
    x = (v + 0.5) / S - 0.5
    w = np.pi * 2.0 ** np.arange(F)
    code = np.concatenate([x[:, None], np.sin(x[:, None] * w), np.cos(x[:, None] * w), np.zeros((S, 1))], 1)
    for (first, _), axis in zip(c.slots, axes):
        at = 0 if axis == "row" else width
        table[first : first + S, at : at + width] = code
        table[first + S, at + width - 1] = 1.0  # none
    return table


def reward_class(rewards: torch.Tensor) -> torch.Tensor:
    """Rewards in {-1, 0, 1} (any shape) -> the reward head's classes 0, 1, 2."""
    return (rewards.round().clamp(-1, 1) + 1).long()


def decoder_macs(tok: ImageTokenizer) -> int:
    """Multiply-adds of the tokenizer's decoder on one frame (shapes traced with hooks)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, nn.ConvTranspose2d):
            total += inp[0][0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]

    hs = [
        m.register_forward_hook(hook) for m in tok.decoder.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    with torch.no_grad():
        tok.decode(torch.zeros(1, tok.c.tokens, dtype=torch.long))
    for h in hs:
        h.remove()
    return total


TOKEN_TEXT = {
    "action": "Discrete actions outside the space raise `dreamgym.ActionError` and step no env.",
    "obs": "decoded frames: the world model samples the next frame's tokens, the tokenizer's decoder draws them",
    "reward": "Predicted by the reward head from the action token's output as one of -1, 0, +1 (the most likely "
    "of three classes): the points of the real game.",
    "reset": "tokenises it and reads it with the RetNet, whose fixed-size state then carries the episode",
    "term": "Termination from the termination head (logit above zero)",
}


def _spaces(c: REMConfig):
    from gymnasium import spaces

    return spaces.Box(0, 255, (c.frame_size, c.frame_size, 3), np.uint8), spaces.Discrete(c.actions)


def _example_batch(c: REMConfig, batch: int, rng: np.random.Generator, T: int = 6) -> tuple:
    """Random tokens, actions, rewards (some points) and terminations in `REM.loss`'s layout."""
    tokens = torch.from_numpy(_random_tokens(c, rng, (batch, T + 1)))
    actions = torch.from_numpy(rng.integers(c.actions, size=(batch, T)))
    rewards = torch.from_numpy(rng.choice(np.array(REWARD_VALUES, np.float32), size=(batch, T), p=[0.2, 0.6, 0.2]))
    return tokens, actions, rewards, torch.zeros(batch, T)


FAMILY = Family(
    name="rem",
    description="Simulus/REM: VQ tokenizer, RetNet with parallel observation prediction, pixel dreams",
    config=REMConfig,
    model=REM,
    evaluator="dreamgym.export.measure.token:TokenEvaluator",
    card_text=TOKEN_TEXT,
    spaces=_spaces,
    example_batch=_example_batch,
)
