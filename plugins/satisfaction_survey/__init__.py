"""The satisfaction_survey plugin (in progress)."""
