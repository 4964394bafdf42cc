"""Reinforcement-learning autoscaler: gym env, observation and action encoding, model cards, training, tuning.

Importing the package registers ``autotune/RayServeCluster-v0`` with gymnasium
(by entry-point string, so torch, SB3 and Ray stay unimported until used).
"""

from __future__ import annotations

ENV_ID = "autotune/RayServeCluster-v0"


def _register() -> None:
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="autotune.rl.env:RayServeClusterEnv")


_register()
