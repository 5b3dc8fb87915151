"""The study domain: stimuli, participants, votes, models and predictions."""
