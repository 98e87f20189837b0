"""Benchmark runs: datasets in the field's formats, pytrec_eval metrics, a runner."""
