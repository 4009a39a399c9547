"""Workflows that use the whole library: training a model (`train`), compressing it with a recipe
(`run_recipe`), and the main job (`demo`). The CLI only parses arguments and calls these."""
