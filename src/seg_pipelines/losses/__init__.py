"""Losses: affinity and auxiliary losses of CAA (eq. 3.10-3.12), the ECAC losses (eq. 4.11-4.21)."""
