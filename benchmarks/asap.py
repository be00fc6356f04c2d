"""ASAP-AES as the essay benchmarks read it: the library's reader and rubric ranges
(edu_flash/essay/asap.py), which the essay recipe uses too."""
from edu_flash.essay.asap import ASAP_RANGES, read_asap

__all__ = ["ASAP_RANGES", "read_asap"]
