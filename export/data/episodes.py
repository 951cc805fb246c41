"""Episode data for training: the collector's npz folders or Minari datasets, as aligned sequences.

Alignment (Dreamer's): at index t the model sees obs[t] together with the action taken *before* it
(prev_action[t] = actions[t-1], zero at the start), the reward received on entering obs[t] and
whether obs[t] is terminal. Context windows in a bundle use the same alignment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamgym.export.data.collect import load_episodes


def align(ep: dict) -> dict[str, np.ndarray]:
    T = len(ep["actions"])
    raw = np.asarray(ep["actions"])
    # Discrete actions stay indices (T,) int64, as a bundle's contexts hold them; Box ones are (T, A) float32
    act = raw.astype(np.int64) if raw.ndim == 1 and raw.dtype.kind in "iu" else raw.astype(np.float32).reshape(T, -1)
    prev = np.concatenate([np.zeros_like(act[:1]), act], 0)  # (T+1, A)
    rew = np.concatenate([[0.0], np.asarray(ep["rewards"], np.float32)]).astype(np.float32)
    term = np.concatenate([[False], np.asarray(ep["terminations"], bool)])
    mask = np.ones(T + 1, np.float32)
    mask[0] = 0.0
    if "perturbed" in ep:  # a push replaced these steps' outcomes: not transitions of the env's dynamics
        mask[1:][np.asarray(ep["perturbed"], bool)] = 0.0
    out = {
        "obs": np.asarray(ep["obs"], np.float32),
        "prev_act": prev,
        "reward": rew,
        "cont": (~term).astype(np.float32),
        "mask": mask,
    }
    if "frames" in ep:
        out["frames"] = ep["frames"]
    return out


def load_folder(folder: str | Path) -> list[dict[str, np.ndarray]]:
    eps = [align(e) for e in load_episodes(folder)]
    if not eps:
        raise FileNotFoundError(f"no episode_*.npz files in {folder!s}; run the collector first")
    return eps


def load_minari(dataset: str | Path) -> list[dict[str, np.ndarray]]:
    """Episodes of a Minari dataset: a local dataset id ("mujoco/halfcheetah/expert-v0", after
    ``minari download``) or the path of a dataset's data folder. Needs ``pip install "minari[hdf5]"``."""
    try:
        import minari
    except ImportError as e:
        raise ImportError('reading Minari datasets needs `pip install "minari[hdf5]"`') from e
    ds = minari.MinariDataset(dataset) if Path(dataset).is_dir() else minari.load_dataset(str(dataset))
    eps = []
    for e in ds.iterate_episodes():
        if isinstance(e.observations, dict):
            raise ValueError(f"{dataset}: dict observations are not supported by the vector RSSM; flatten them first")
        eps.append(
            align(
                {
                    "obs": e.observations,
                    "actions": e.actions,
                    "rewards": e.rewards,
                    "terminations": e.terminations,
                    "truncations": e.truncations,
                }
            )
        )
    return eps


class SequenceSampler:
    """Random windows of `length` steps from a list of aligned episodes, as float32 arrays."""

    def __init__(self, episodes: list[dict[str, np.ndarray]], length: int, seed: int = 0):
        self.eps = [e for e in episodes if len(e["obs"]) >= length]
        if not self.eps:
            raise ValueError(f"no episode has {length} steps; use a shorter sequence length")
        self.length = length
        self.rng = np.random.default_rng(seed)
        self.weights = np.array([len(e["obs"]) - length + 1 for e in self.eps], np.float64)
        self.weights /= self.weights.sum()

    def sample(self, batch: int) -> dict[str, np.ndarray]:
        which = self.rng.choice(len(self.eps), size=batch, p=self.weights)
        out: dict[str, list] = {k: [] for k in ("obs", "prev_act", "reward", "cont", "mask")}
        for i in which:
            e = self.eps[i]
            s = int(self.rng.integers(len(e["obs"]) - self.length + 1))
            for k in out:
                out[k].append(e[k][s : s + self.length])
        return {k: np.stack(v) for k, v in out.items()}


class FrameSampler:
    """Random (obs, frame) pairs from episodes that carry frames."""

    def __init__(self, episodes: list[dict[str, np.ndarray]], seed: int = 0):
        eps = [e for e in episodes if "frames" in e]
        if not eps:
            raise ValueError("no episode carries frames; collect with frame_size > 0")
        self.obs = np.concatenate([e["obs"] for e in eps])
        self.frames = np.concatenate([e["frames"] for e in eps])
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        i = self.rng.integers(len(self.obs), size=batch)
        return self.obs[i], self.frames[i]


class TerminationSampler:
    """Next observations of every transition and whether they end the episode, for a termination head: each
    batch is a uniform draw with `extra_share` more rows drawn from the terminal ones only (flagged `extra`)."""

    def __init__(self, episodes: list[dict[str, np.ndarray]], seed: int = 0, extra_share: float = 0.25):
        keep = [e["mask"][1:] > 0 for e in episodes]  # not the outcomes a push replaced
        self.obs = np.concatenate([e["obs"][1:][k] for e, k in zip(episodes, keep)]).astype(np.float32)
        self.ended = np.concatenate([1.0 - e["cont"][1:][k] for e, k in zip(episodes, keep)]).astype(np.float32)
        self.ends = np.flatnonzero(self.ended > 0)
        self.extra_share, self.rng = extra_share, np.random.default_rng(seed)

    def sample(self, batch: int, extra: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = int(round(batch * self.extra_share)) if extra else 0
        if k and not len(self.ends):
            raise ValueError("no episode terminates: there is nothing for a termination head to learn")
        idx = np.concatenate([self.rng.integers(len(self.obs), size=batch - k), self.rng.choice(self.ends, k)])
        flag = np.zeros(batch, bool)
        flag[batch - k :] = True
        return self.obs[idx], self.ended[idx], flag
