"""Model components chosen by name: dynamics, transitions, emissions."""
