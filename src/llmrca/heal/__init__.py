"""Online self-healing: detect -> localize -> remediate, with an audit log."""

from llmrca.heal.detector import ThresholdAlert
from llmrca.heal.loop import HealConfig, HealReport, heal_sim

__all__ = ["HealConfig", "HealReport", "ThresholdAlert", "heal_sim"]
