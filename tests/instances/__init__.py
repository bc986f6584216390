"""Simulated EC2 instances: moto's instances booted as systemd-nspawn containers (issue 11)."""
