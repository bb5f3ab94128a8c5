"""wamzoo policies inside LeRobot: ``--policy.type=wamzoo``.

LeRobot imports this package at start-up (its distribution is named ``lerobot_policy_wamzoo``); importing it
registers :class:`WamzooConfig` under ``"wamzoo"``. LeRobot then finds :class:`WamzooPolicy` in
``modeling_wamzoo`` and ``make_wamzoo_pre_post_processors`` in ``processor_wamzoo`` by its naming convention.
"""

from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfig

__all__ = ["WamzooConfig"]
