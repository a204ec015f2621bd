from .accuracy import (ARCH_COLORS, accuracy_vs_params, accuracy_vs_setting, converged_vs_fixed, heads_and_state, level,
                       params_per_width, save_figure, save_table, summarize, table_at, to_markdown, wide)

__all__ = ["ARCH_COLORS", "accuracy_vs_params", "accuracy_vs_setting", "converged_vs_fixed", "heads_and_state", "level",
           "params_per_width", "save_figure", "save_table", "summarize", "table_at", "to_markdown", "wide"]
