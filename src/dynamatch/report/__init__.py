"""Plots and text summaries (matplotlib, Agg backend; files only, no windows)."""
