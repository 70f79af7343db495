"""Processing provider ``ssm``: one thin algorithm per ``alg_*.py`` module."""
