"""Data: records → conversations → templated, tokenized, role-masked, packed rows."""
