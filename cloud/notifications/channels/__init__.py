"""Delivery channels: one adapter per provider behind `Channel`."""
