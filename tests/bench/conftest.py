# Benchmarks are scripts run by hand (`make bench`), never collected as tests.
collect_ignore_glob = ["*.py"]
