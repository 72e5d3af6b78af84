"""The submodels of one quarter, in schedule order (docs/model.md, section 7)."""
