"""Measured reports, model cards, and pushing compressed models to the Hub."""

from ..evaluation.measure import ModelMeasurement, measure_model  # measured in evaluation/, kept importable here
from .card import render_model_card
from .push import push_compressed_to_hub
from .report import REPORT_NAME, CompressionReport, build_report

__all__ = [
    "REPORT_NAME",
    "CompressionReport",
    "ModelMeasurement",
    "build_report",
    "measure_model",
    "push_compressed_to_hub",
    "render_model_card",
]
