"""Training callbacks (see edu_flash.core.callbacks): subclass `Callback`, or use the built-ins.

    from edu_flash.callbacks import LearningRateMonitor, DeviceStatsMonitor, ModelCheckpoint
    scorer.finetune("essays.csv", val="val.csv", callbacks=[LearningRateMonitor(), ModelCheckpoint("rmse", "min")])
"""
from .core.callbacks import (Callback, DeviceStatsMonitor, LearningRateMonitor, ModelCheckpoint,  # noqa: F401
                             TrainState)

__all__ = ["Callback", "TrainState", "LearningRateMonitor", "DeviceStatsMonitor", "ModelCheckpoint"]
