"""Turns a seed, a clock and profiles into rows. Imports no Django ORM: it is tested without a
database, and the same rules serve the historical seed and the live simulator."""
