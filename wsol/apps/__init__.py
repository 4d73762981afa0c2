"""The commands built on the library: ``demo``, ``explain``, ``bench`` and ``train``."""
