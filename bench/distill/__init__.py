"""Training and distillation: recipes, on-device data, the trainer, the distillation benchmark and its table."""

from ._data import DeviceImages
from ._losses import objective
from ._recipe import LOSSES, Recipe
from ._trainer import EpochLog, TrainResult, evaluate, train

__all__ = ["LOSSES", "DeviceImages", "EpochLog", "Recipe", "TrainResult", "evaluate", "objective", "train"]
