"""Benchmarks: national-scale synthetic data generated in SQL, and HTTP load measurement."""
