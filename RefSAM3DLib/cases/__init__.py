"""Labelled cases shared by training and evaluation: datalists, label names -> prompts, case checks.

Training and evaluation both read these; keeping them here means evaluation does not depend on training.
"""
