"""Staffing: the roster a manager keeps (`roster`) and the advice built on it and the
engine's state (`advice`): whom to move to a team at risk, whom to give back, and what the
capacity left could start on."""
