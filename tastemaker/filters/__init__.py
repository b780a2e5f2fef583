"""The filter language: parse -> check against schemas -> compile to boolean masks over a catalogue."""

from tastemaker.filters.ast import FilterExpression, render
from tastemaker.filters.checker import CheckedFilter, FilterLimits, check_filter
from tastemaker.filters.compiler import CompiledFilter, FilterCatalog, FilterRequest, compile_filter
from tastemaker.filters.parser import parse_filter
from tastemaker.filters.values import parse_filter_values

__all__ = [
    "CheckedFilter",
    "CompiledFilter",
    "FilterCatalog",
    "FilterExpression",
    "FilterLimits",
    "FilterRequest",
    "check_filter",
    "compile_filter",
    "parse_filter",
    "parse_filter_values",
    "render",
]
