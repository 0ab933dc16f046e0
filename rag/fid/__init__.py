"""Fusion-in-Decoder readers (Izacard & Grave, EACL 2021) and LUMEN passage memory (de Jong et al., ICML 2023)."""
