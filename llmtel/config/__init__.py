"""Configuration: the option table, typed settings, ``configure()`` and the OpenTelemetry distro.

The only package that reads the process environment (outside the distro's documented
defaults it never writes it).
"""
