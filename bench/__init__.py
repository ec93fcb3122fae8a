"""Benchmarks of normloom and the OpenAI-compatible simulator they run against."""
